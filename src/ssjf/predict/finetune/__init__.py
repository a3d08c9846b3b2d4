"""Fine-tuned transformer length predictors (the SSJF paper's BERT setup and ranking losses).

Importing this package registers the ``finetune-*`` families without importing
torch or transformers; those load when a predictor is fitted or loaded
(``pip install 'ssjf[finetune]'``).
"""

from __future__ import annotations

from ssjf.predict.finetune.predictor import (
    FineTuneAny,
    FineTuneBucket,
    FineTuneListwise,
    FineTuneOrdinal,
    FineTunePairwise,
    FineTunePredictor,
    FineTuneRegression,
)

FAMILIES = (
    "finetune-regression",
    "finetune-bucket",
    "finetune-ordinal",
    "finetune-pairwise",
    "finetune-listwise",
)
#: The same five through one family: ``make_predictor("finetune", formulation="listwise")``.
GENERIC_FAMILY = "finetune"

__all__ = [
    "FAMILIES",
    "FineTuneAny",
    "FineTuneBucket",
    "FineTuneListwise",
    "FineTuneOrdinal",
    "FineTunePairwise",
    "FineTunePredictor",
    "FineTuneRegression",
]
