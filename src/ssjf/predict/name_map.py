"""A per-model map for a model never seen in training, predicted from its name.

Each seen model ``m`` has an affine map ``log1p(tokens) ~ a_m + b_m * score`` with
residual quantiles (:class:`ssjf.predict.conditioning.ModelCalibration`). A ridge
over the seen models regresses each model's *deviation* from the global map
(``a_m - a``, ``b_m - b``, quantiles, log-mean-exp) on the features of its name
(:mod:`ssjf.predict.model_names`): family, size, reasoning / instruct / small /
concise / verbose. No intercept, so a name with no known feature, or with features
no seen model had, gets the global map back (today's fallback): the ridge only moves
an unseen model away from the global map by what names like its own did. A prediction
is clipped, column by column, to the range of the seen models' deviations: a size or
flag combination no seen model had must not extrapolate the map (in the collection
inner CV an unclipped slope sent embed-ridge's MAE on unseen alpaca_eval models from
240 to 874 tokens).

Stored by feature *name* (not column position), so a save stays readable when the
feature list grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.predict.model_names import FEATURE_NAMES, name_features, name_matrix


@dataclass(slots=True)
class NameMap:
    """Ridge from name features to deviations from the global map (``coef``: feature -> row)."""

    alpha: float = 1.0
    coef: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per column, the smallest and largest deviation of a seen model, and 0 (the clip range).
    low: np.ndarray = field(default_factory=lambda: np.zeros(0))
    high: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def fitted(self) -> bool:
        """Whether any name feature moves a prediction."""
        return bool(self.coef)

    def fit(
        self, names: Sequence[str], deviations: np.ndarray, weights: np.ndarray | None = None
    ) -> NameMap:
        """Fit on the seen models' names and their deviation rows (one row per name).

        ``weights``: how much each seen model's map is worth (default 1 each). A model
        whose prompts span a sliver of the score range (one template, as in
        routellm_gsm8k) gets a meaningless slope (10x the global one there); it should
        neither pull the ridge nor widen the clip range.
        """
        if self.alpha <= 0 or not np.isfinite(self.alpha):
            raise ValueError(f"name_alpha must be a positive number, got {self.alpha}")
        dev = np.asarray(deviations, dtype=float)
        if dev.ndim != 2 or dev.shape[0] != len(names):
            raise ValueError("need one deviation row per model name")
        w = np.ones(len(names)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(names),) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("need one finite, non-negative weight per model name")
        self.coef = {}
        if not names:
            return self
        # 0 stays inside the range: a name with no known feature keeps the global map.
        solid = dev[w >= 0.5] if np.any(w >= 0.5) else np.zeros((1, dev.shape[1]))
        self.low = np.minimum(solid.min(axis=0), 0.0)
        self.high = np.maximum(solid.max(axis=0), 0.0)
        x = name_matrix(list(names))
        used = np.flatnonzero(np.abs(x).sum(axis=0) > 0)  # features no seen model has: 0
        if used.size == 0:
            return self
        xu = x[:, used]
        xw = xu * w[:, None]
        beta = np.linalg.solve(xw.T @ xu + self.alpha * np.eye(used.size), xw.T @ dev)
        self.coef = {FEATURE_NAMES[j]: beta[k] for k, j in enumerate(used)}
        return self

    def predict(self, name: str) -> np.ndarray | None:
        """The predicted deviation row for ``name`` (None when unfitted)."""
        if not self.coef:
            return None
        feats = name_features(name)
        out = np.zeros(len(next(iter(self.coef.values()))))
        for j, fname in enumerate(FEATURE_NAMES):
            if feats[j] != 0.0 and fname in self.coef:
                out += feats[j] * self.coef[fname]
        if len(self.low) == len(out):
            out = np.clip(out, self.low, self.high)
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (part of calibration.json)."""
        return {
            "alpha": self.alpha,
            "coef": {k: v.tolist() for k, v in self.coef.items()},
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NameMap:
        """Inverse of :meth:`to_json`."""
        return cls(
            alpha=float(data.get("alpha", 1.0)),
            coef={str(k): np.asarray(v, dtype=float) for k, v in data.get("coef", {}).items()},
            low=np.asarray(data.get("low", []), dtype=float),
            high=np.asarray(data.get("high", []), dtype=float),
        )
