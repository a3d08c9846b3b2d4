"""Baseline families: a constant per model, and input-length regression.

They set the floor every real predictor must beat. ``constant`` cannot order
requests of one model at all (tau 0 within a model) but is the right reference
for MAE; ``input-length`` is Magnus's strongest single feature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.predict.base import Predictor, PredictorError, register_predictor
from ssjf.predict.scored import ScorePredictor

_LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approx_tokens(text: str) -> int:
    """Whitespace/punctuation word count: a tokenizer-free proxy for prompt tokens."""
    return len(_WORD.findall(text))


@register_predictor("constant")
class ConstantPredictor(Predictor):
    """Mean or median training length of each model (global statistic for unknown models)."""

    needs_extra: ClassVar[str | None] = None
    bench_params: ClassVar[dict[str, Any]] = {"stat": "median"}

    def __init__(self, stat: str = "median") -> None:
        # median: the MAE-optimal constant; mean: the MSE-optimal one.
        if stat not in ("mean", "median"):
            raise TypeError("stat must be 'mean' or 'median'")
        super().__init__(stat=stat)
        self.table: dict[str, tuple[float, tuple[float, ...]]] = {}
        self.default: tuple[float, tuple[float, ...]] = (1.0, ())

    def _summary(self, values: np.ndarray) -> tuple[float, tuple[float, ...]]:
        point = float(np.mean(values) if self.params["stat"] == "mean" else np.median(values))
        return max(point, 0.0), tuple(float(v) for v in np.quantile(values, _LEVELS))

    def fit(
        self,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Sequence[str | None] | None = None,
    ) -> ConstantPredictor:
        """Store each model's statistic and length quantiles."""
        y = np.asarray(lengths, dtype=float)
        if y.size == 0 or y.size != len(prompts):
            raise PredictorError("need as many lengths as prompts, and at least one")
        mods = self._models_for(len(y), models)
        self.default = self._summary(y)
        names = np.array([m if m is not None else "" for m in mods], dtype=object)
        self.table = {
            str(m): self._summary(y[names == m]) for m in sorted(set(names.tolist())) if m
        }
        self.training.update(records=len(y), models=sorted(self.table))
        self.fitted = True
        return self

    def _lookup(self, model: str | None) -> tuple[float, tuple[float, ...]]:
        if model is None:
            return self.default
        return self.table.get(model, self.default)

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        """The model's statistic (its length quantiles as the interval)."""
        self._check_fitted()
        out = []
        for m in self._models_for(len(prompts), models):
            point, qs = self._lookup(m)
            out.append(LengthEstimate(point=point, quantiles=tuple(zip(_LEVELS, qs, strict=True))))
        return out

    def predict_points(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """The model's statistic for every prompt."""
        self._check_fitted()
        return np.array([self._lookup(m)[0] for m in self._models_for(len(prompts), models)])

    def _save_weights(self, path: Path) -> None:
        data = {"default": self.default, "models": self.table}
        (path / "constants.json").write_text(json.dumps(data, indent=1) + "\n")

    def _load_weights(self, path: Path) -> None:
        try:
            data = json.loads((path / "constants.json").read_text())
        except (OSError, ValueError) as exc:
            raise PredictorError(f"{path}: cannot read constants.json: {exc}") from None
        self.default = (float(data["default"][0]), tuple(data["default"][1]))
        self.table = {k: (float(v[0]), tuple(v[1])) for k, v in data["models"].items()}


@register_predictor("input-length")
class InputLengthPredictor(ScorePredictor):
    """Ridge on log prompt length (words and characters) plus the per-model map."""

    defaults: ClassVar[dict[str, Any]] = {}

    def _transform(self, prompts: Sequence[str]) -> np.ndarray:
        return length_features(prompts)

    def _prepare(self, prompts: Sequence[str]) -> list[str]:
        return list(prompts)  # the full length is the feature: never truncate here


def length_features(prompts: Sequence[str]) -> np.ndarray:
    """``[log1p(words), log1p(chars), log1p(lines)]`` per prompt (full, untruncated text)."""
    out = np.empty((len(prompts), 3))
    for i, p in enumerate(prompts):
        out[i, 0] = np.log1p(approx_tokens(p))
        out[i, 1] = np.log1p(len(p))
        out[i, 2] = np.log1p(p.count("\n"))
    return out
