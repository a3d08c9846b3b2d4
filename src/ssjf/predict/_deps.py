"""Lazy imports of the heavy optional dependencies, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_HINT = "install the predictor extra: pip install 'ssjf[predict]'"


class MissingDependency(ImportError):
    """An optional dependency of a predictor family is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{module} is needed here ({exc}); {_EXTRA_HINT}") from None


def require_sklearn() -> ModuleType:
    """scikit-learn (TF-IDF, ridge, quantile and bucket heads)."""
    return require("sklearn")


def require_torch() -> ModuleType:
    """PyTorch, for the fine-tuned transformer predictors (imports it; sets no threads)."""
    return require("torch")
