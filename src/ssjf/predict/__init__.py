"""Output-length predictors: the proxy models that make SJF speculative.

Importing this package (which Python does before importing any of its
submodules) registers the built-in families: the imports below are the one list
of them, and registration runs one way, family module -> :mod:`ssjf.predict.base`.
A family defined outside ssjf registers by being imported (``@register_predictor``).
Heavy dependencies (scikit-learn, torch, sentence-transformers) load only when a
family is fitted or used.
"""

from __future__ import annotations

# The built-in families, registered on import (finetune imports no torch until fit/load).
from ssjf.predict import baselines as _baselines  # noqa: F401
from ssjf.predict import embed as _embed  # noqa: F401
from ssjf.predict import finetune as _finetune  # noqa: F401
from ssjf.predict import text as _text  # noqa: F401
from ssjf.predict.base import (
    Predictor,
    PredictorError,
    available_predictors,
    load_predictor,
    make_predictor,
    register_predictor,
)

__all__ = [
    "DEFAULT_FAMILY",
    "Predictor",
    "PredictorError",
    "available_predictors",
    "load_predictor",
    "make_predictor",
    "register_predictor",
]

#: The family `ssjf train` uses when none is given: cheap (well under 5 ms per
#: prompt on one CPU core) and the best of the cheap families in `ssjf bench predictor`.
DEFAULT_FAMILY = "tfidf"
