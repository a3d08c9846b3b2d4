"""Magnus's serving-time estimator: a batch's seconds, learned from completed batches only."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


def batch_features(size: int, longest: float, prompt_tokens: int) -> tuple[float, ...]:
    """``[1, L, m*L, P]`` for a batch of ``m`` members, longest predicted output ``L``, prompts ``P``.

    Why these: a padded batch costs one prefill (``~P``) plus ``L`` decode steps
    whose time is a fixed part (``~L``) plus a per-sequence part (``~m*L``),
    the shape of the affine cost model without assuming its coefficients.
    """
    return (1.0, float(longest), float(size) * float(longest), float(prompt_tokens))


class ServingTimeModel:
    """Least squares of batch seconds on :func:`batch_features`, over recent completions.

    Causal by construction: each observation carries the time its batch
    completed, and :meth:`predict` at time ``now`` uses only observations
    completed by ``now`` (the last ``window`` of them). Before any completion
    it knows nothing (``None``); with fewer completions than twice the number
    of features, or when the fit would give a non-positive time, it scales the
    mean seconds per predicted step instead (``L + 1`` steps: prefill + decode).
    Magnus fits a KNN regressor on the same inputs; a linear fit needs fewer
    batches to say something and extrapolates to batch shapes not seen yet.
    """

    __slots__ = ("_coef", "_coef_k", "_done", "_x", "_y", "window")

    def __init__(self, window: int = 256) -> None:
        if window < 1:
            raise ValueError(f"ServingTimeModel.window must be >= 1, got {window}")
        self.window = window  # recent batches only: enough for a stable fit, adapts to drift
        self._x: list[tuple[float, ...]] = []
        self._y: list[float] = []
        self._done: list[float] = []
        self._coef: np.ndarray | None = None
        self._coef_k = -1  # number of observations the cached coefficients used

    def __len__(self) -> int:
        return len(self._y)

    def observe(self, features: tuple[float, ...], seconds: float, done_at: float) -> None:
        """A batch with ``features`` took ``seconds`` and completed at ``done_at``."""
        if self._done and done_at < self._done[-1]:
            raise ValueError("ServingTimeModel.observe: completions must come in time order")
        self._x.append(features)
        self._y.append(seconds)
        self._done.append(done_at)

    def usable(self, now: float) -> int:
        """How many observations had completed by ``now``."""
        return bisect_right(self._done, now)

    def predict(self, features: tuple[float, ...], now: float) -> float | None:
        """Estimated seconds of a batch with ``features``, from batches completed by ``now``."""
        k = self.usable(now)
        if k == 0:
            return None
        lo = max(0, k - self.window)
        if k - lo >= 2 * len(features):
            coef = self._fit(lo, k)
            est = float(np.dot(coef, features))
            if est > 0:
                return est
        steps = sum(x[1] + 1.0 for x in self._x[lo:k])
        return sum(self._y[lo:k]) / steps * (features[1] + 1.0)

    def _fit(self, lo: int, k: int) -> np.ndarray:
        if self._coef is None or self._coef_k != k:
            x = np.asarray(self._x[lo:k], dtype=float)
            y = np.asarray(self._y[lo:k], dtype=float)
            scale = np.maximum(np.abs(x).max(axis=0), 1e-12)  # conditioning: columns to ~1
            sol, *_ = np.linalg.lstsq(x / scale, y, rcond=None)
            self._coef, self._coef_k = sol / scale, k
        return self._coef
