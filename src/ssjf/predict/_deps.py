"""Lazy imports of the heavy optional dependencies, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from ssjf.extras import MissingExtra, extra_for_module


def require(module: str, what: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = extra_for_module(module)
        if extra is None:  # not one of ours: the plain error says more
            raise
        raise MissingExtra(extra, what or "this feature", [exc.name or module]) from None


def require_sklearn() -> ModuleType:
    """scikit-learn (TF-IDF, ridge, quantile and bucket heads)."""
    return require("sklearn", "this predictor")
