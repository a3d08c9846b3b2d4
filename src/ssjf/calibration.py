"""Self-calibration of length estimates from completions, per model.

A predictor trained on some models and prompts misjudges others: a reasoning
model may answer 3x longer than anything it saw. As requests finish, their
true lengths update, per model, the distribution of ``log(true / predicted)``;
a new request's estimate becomes ``point x scale`` with quantiles of the same
shape, so a model the predictor never saw is corrected after a few dozen
completions. One component serves the simulator (``ssjf.sim.calibration``)
and the gateway (``ssjf.gateway.calibration``).

Choices, and why:

- **Censoring.** A request stopped by ``max_tokens`` only says ``length >=
  max_tokens``. Ratios are estimated with Kaplan-Meier on the log-ratios, so a
  censored one is never taken as a true length: it only keeps its weight "at
  risk" above its value, so censoring never lowers a quantile of the ratios. (The
  scale, their mean, can dip slightly: the exponential tail grows with the gap
  between the top two levels, so lifting only the 0.90 quantile shrinks it.) Quantiles the data cannot reach (every remaining
  completion censored) are put at the largest value seen, a lower bound.
- **Scale = expected ratio.** The corrected point is the mean of the corrected
  distribution (quantile function averaged on the same 64-level grid that
  :meth:`LengthEstimate.remaining` uses, with its exponential upper tail): ordering by expected
  size is what shortest-first needs, an unbiased predictor keeps a scale near
  1, and ``remaining(g)`` starts where the point is.
- **Shrinkage.** A model with ``n`` completions gets weight ``n / (n + k)`` on
  its own log-scale, the rest on the pooled one (which is itself shrunk
  toward 1, i.e. toward trusting the predictor).
- **Spread.** Point predictors get quantiles: the model's own ratio shape when
  it has ``min_samples`` completions, else the pooled shape, else a lognormal
  prior of log-spread ``sigma``; this is what lets ``remaining(generated)``
  condition on progress. A predictor's own quantiles keep their shape.
- **Bounds.** ``window`` recent completions per model and pooled; at most
  ``max_models`` models, least recently completed evicted first (clients pick
  model names: a flood of names costs calibration, never memory); ratios
  clamped to ``[1 / max_ratio, max_ratio]``; lengths under one token count as one.
- **Causality** is the caller's duty: feed a completion only once it finished.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import NormalDist

from ssjf.calibration_window import GRID, RatioWindow, grid_mean
from ssjf.estimate import LengthEstimate
from ssjf.numeric_spec import parse_numeric_spec

#: Keys of a calibration spec (short names for the command line) -> setting names.
SPEC_KEYS = {"window": "window", "prior": "prior_count", "prior_count": "prior_count",
             "sigma": "sigma", "min_samples": "min_samples", "models": "max_models",
             "max_models": "max_models", "max_ratio": "max_ratio",
             "tolerance": "tolerance"}  # fmt: skip
#: Quantile levels of calibrated estimates: 0.05 .. 0.95, fine enough for remaining().
LEVELS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True, slots=True)
class CalibrationSettings:
    """How the calibrator learns; every default says why."""

    #: Recent completions kept per model (and pooled): recent traffic, bounded memory.
    window: int = 512
    #: Pseudo-count k of the shrinkage n / (n + k): ~k completions to half-trust a model.
    prior_count: float = 10.0
    #: Log-spread of the lognormal prior given to point estimates before data (0: none).
    #: 0.8 is about the residual spread of the project's predictors on held-out data.
    sigma: float = 0.8
    #: Completions before a group's own ratio quantiles replace the pooled or prior shape.
    min_samples: int = 30
    #: Models calibrated apart; more share the pooled calibration (LRU by completion).
    max_models: int = 64
    #: Largest true/predicted ratio believed (either way): one absurd record can't rule.
    max_ratio: float = 1000.0
    #: Scale moves within this relative band are not passed on (hysteresis): a scale
    #: drifting a few percent with the window's make-up would reorder a model's waiting
    #: requests against newer ones of equal prediction (FCFS ties) for nothing.
    tolerance: float = 0.1
    levels: tuple[float, ...] = field(default=LEVELS)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"calibration window must be >= 1, got {self.window!r}")
        if not math.isfinite(self.prior_count) or self.prior_count < 0:
            raise ValueError(f"calibration prior_count must be >= 0, got {self.prior_count!r}")
        if not math.isfinite(self.sigma) or not 0 <= self.sigma <= 5:
            raise ValueError(f"calibration sigma must be in [0, 5], got {self.sigma!r}")
        if self.min_samples < 1:
            raise ValueError(f"calibration min_samples must be >= 1, got {self.min_samples!r}")
        if self.max_models < 0:
            raise ValueError(f"calibration max_models must be >= 0, got {self.max_models!r}")
        if not math.isfinite(self.max_ratio) or self.max_ratio <= 1:
            raise ValueError(f"calibration max_ratio must be > 1, got {self.max_ratio!r}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"calibration tolerance must be in [0, 1), got {self.tolerance!r}")
        lv = self.levels
        if not lv or any(not 0 < a < 1 for a in lv) or any(b <= a for a, b in pairwise(lv)):
            raise ValueError(f"calibration levels must increase inside (0, 1), got {lv!r}")

    @classmethod
    def parse(cls, spec: str) -> CalibrationSettings:
        """``"on"`` (or empty) -> defaults; ``"window=256,sigma=0.6,prior=10,models=16"``."""
        return parse_numeric_spec(cls, spec, SPEC_KEYS, "calibration", ",")


class Calibrator:
    """Per-model calibration of length estimates from completed requests (see module doc).

    ``observe`` one completion (model, the predictor's raw point, the true or
    censored length); ``estimate`` corrects a new request's raw estimate.
    ``observe`` is a sorted insert (a memmove of at most ``window`` pairs);
    ``estimate`` reruns Kaplan-Meier (O(window)) only once 1/64 of a window is
    new, so about O(64) per completion on average. Memory is
    O((max_models + 1) x window).
    """

    def __init__(self, settings: CalibrationSettings | None = None) -> None:
        self.settings = settings or CalibrationSettings()
        s = self.settings
        self._log_max = math.log(s.max_ratio)
        self._pooled = RatioWindow(s.window)
        self._groups: OrderedDict[str | None, RatioWindow] = OrderedDict()
        #: Completions observed in all (including those already out of every window).
        self.completions = 0
        self._prior = _lognormal_shape(s.sigma, s.levels) if s.sigma > 0 else None
        self._pooled_scale: float | None = None  # cache, reset by observe()
        self._pooled_held: float | None = None  # the pooled scale last passed on
        self._log_tol = math.log1p(s.tolerance)

    # -- learning ------------------------------------------------------------------------
    def observe(self, model: str | None, predicted: float, actual: int, censored: bool) -> None:
        """One finished request: the raw predicted point, its length, whether it was cut."""
        if not math.isfinite(predicted) or predicted < 0:
            raise ValueError(f"predicted length must be finite and >= 0, got {predicted!r}")
        if actual < 0:
            raise ValueError(f"true length must be >= 0, got {actual!r}")
        lr = math.log(max(actual, 1) / max(predicted, 1.0))
        lr = min(max(lr, -self._log_max), self._log_max)
        self._pooled.add(lr, censored)
        self._pooled_scale = None
        self.completions += 1
        if self.settings.max_models == 0:
            return
        group = self._groups.get(model)
        if group is None:
            if len(self._groups) >= self.settings.max_models:
                self._groups.popitem(last=False)  # least recently completed
            group = self._groups[model] = RatioWindow(self.settings.window)
        else:
            self._groups.move_to_end(model)
        group.add(lr, censored)

    # -- estimating ----------------------------------------------------------------------
    def seen(self, model: str | None) -> int:
        """Completions in ``model``'s own window (0: it gets the pooled calibration)."""
        group = self._groups.get(model)
        return len(group) if group is not None else 0

    def pooled_scale(self) -> float:
        """The pooled scale (all recent completions, shrunk toward 1), with hysteresis."""
        self._pooled_held = self._hold(self._pooled_held, self._raw_pooled())
        return self._pooled_held

    def scale(self, model: str | None) -> float:
        """Multiplier of ``model``'s predicted points: its own scale shrunk toward the pooled."""
        group = self._groups.get(model)
        if group is None or not len(group):
            return self.pooled_scale()
        group.held = self._hold(group.held, self._raw_scale(group))
        return group.held

    def _raw_pooled(self) -> float:
        if self._pooled_scale is None:
            n = len(self._pooled)
            s = 1.0
            if n:
                w = n / (n + self.settings.prior_count)
                s = math.exp(w * math.log(self._pooled.summary(self.settings.levels).scale))
            self._pooled_scale = s
        return self._pooled_scale

    def _raw_scale(self, group: RatioWindow) -> float:
        n = len(group)
        w = n / (n + self.settings.prior_count)
        own = group.summary(self.settings.levels).scale
        return math.exp(w * math.log(own) + (1.0 - w) * math.log(self._raw_pooled()))

    def _hold(self, held: float | None, new: float) -> float:
        """``new`` once it leaves the tolerance band around what was passed on before."""
        if held is None or abs(math.log(new / held)) > self._log_tol:
            return new
        return held

    def estimate(self, est: LengthEstimate, model: str | None) -> LengthEstimate:
        """``est`` corrected for ``model``: point x scale, quantiles of the calibrated shape."""
        s = self.scale(model)
        if est.quantiles:
            return LengthEstimate(
                point=est.point * s, quantiles=tuple((q, v * s) for q, v in est.quantiles)
            )
        point = max(est.point, 1.0) * s
        shape = self._shape(model)
        if shape is None:
            return LengthEstimate(point=point)
        levels = self.settings.levels
        return LengthEstimate(
            point=point, quantiles=tuple(zip(levels, (point * r for r in shape), strict=True))
        )

    def _shape(self, model: str | None) -> tuple[float, ...] | None:
        """Mean-one ratio quantiles: the model's own, else the pooled, else the prior's."""
        need, levels = self.settings.min_samples, self.settings.levels
        group = self._groups.get(model)
        if group is not None and len(group) >= need:
            return group.summary(levels).shape
        if len(self._pooled) >= need:
            return self._pooled.summary(levels).shape
        return self._prior

    def snapshot(self) -> tuple[float, int, list[tuple[str | None, float, int]]]:
        """(pooled scale, pooled window size, [(model, scale, completions)]): for metrics."""
        # What estimates use now (read only: a scrape must not move the hysteresis).
        pooled = self._pooled_held if self._pooled_held is not None else self._raw_pooled()
        groups = [
            (m, g.held if g.held is not None else self._raw_scale(g), len(g))
            for m, g in list(self._groups.items())
        ]
        return pooled, len(self._pooled), groups


def _lognormal_shape(sigma: float, levels: tuple[float, ...]) -> tuple[float, ...]:
    """Quantiles of a lognormal of log-spread ``sigma``, scaled to mean 1 on the grid."""
    z = NormalDist()
    raw = [math.exp(sigma * z.inv_cdf(q)) for q in levels]
    mean = grid_mean(levels, raw)
    return tuple(v / mean for v in raw)


__all__ = ["GRID", "LEVELS", "CalibrationSettings", "Calibrator"]
