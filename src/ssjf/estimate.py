"""Output-length estimates: what a scheduler may know about a request's length."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LengthEstimate:
    """A predicted output length in tokens: a point and, where known, quantiles.

    ``quantiles`` is a tuple of ``(level, tokens)`` pairs with strictly increasing
    levels in (0, 1) and non-decreasing token counts; it describes the predictive
    distribution of the length and lets schedulers ask conditional questions
    (how much is left given that ``g`` tokens were already generated).
    """

    point: float
    quantiles: tuple[tuple[float, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if not math.isfinite(self.point) or self.point < 0:
            raise ValueError(f"LengthEstimate.point must be finite and >= 0, got {self.point!r}")
        prev_level, prev_tokens = 0.0, -math.inf
        for level, tokens in self.quantiles:
            if not 0.0 < level < 1.0 or level <= prev_level:
                raise ValueError(
                    f"quantile levels must increase strictly inside (0, 1), got {self.quantiles!r}"
                )
            if tokens < prev_tokens or not math.isfinite(tokens):
                raise ValueError(
                    f"quantile values must be finite and non-decreasing, got {self.quantiles!r}"
                )
            prev_level, prev_tokens = level, tokens

    def quantile(self, level: float) -> float:
        """Interpolated length at ``level``; the point when no quantiles are known.

        Below the first level the first value holds; above the last, an
        exponential tail through the last two quantiles (:meth:`tail_scale`)
        when they define one, else the last value holds.
        """
        if not self.quantiles:
            return self.point
        levels = [q for q, _ in self.quantiles]
        values = [v for _, v in self.quantiles]
        if level <= levels[0]:
            return values[0]
        if level >= levels[-1]:
            beta = self.tail_scale()
            if beta is None or level >= 1.0:
                return values[-1]
            return values[-1] + beta * math.log((1.0 - levels[-1]) / (1.0 - level))
        i = bisect.bisect_left(levels, level)
        lo_q, hi_q = levels[i - 1], levels[i]
        lo_v, hi_v = values[i - 1], values[i]
        return lo_v + (hi_v - lo_v) * (level - lo_q) / (hi_q - lo_q)

    def remaining(self, generated: int) -> float:
        """Expected tokens still to come given that ``generated`` were produced.

        With quantiles this is the mean of the predictive distribution conditioned
        on ``length > generated`` (piecewise-linear quantile function, the lower
        tail held flat, the upper one exponential: :meth:`tail_scale`), minus
        ``generated``. With a point alone, the point minus what was
        generated; once a request outlives its point estimate we cannot know more,
        so we assume one more token, keeping the estimate positive so it never
        sorts ahead of a request that is truly about to finish by accident of sign.
        """
        if generated <= 0:
            return self.point
        if self.quantiles:
            # Sample the quantile function on a fine grid of levels, keep the part
            # above `generated`, and average it: cheap, monotone and exact enough.
            grid = [self.quantile((i + 0.5) / 64) for i in range(64)]
            tail = [v for v in grid if v > generated]
            if tail:
                return sum(tail) / len(tail) - generated
            # Past the whole grid: the exponential tail's mean residual life, so a
            # request that outlives its distribution keeps a realistic amount of
            # work left ("one more token" would put the longest runner first).
            beta = self.tail_scale()
            if beta is not None:
                return beta
        return max(self.point - generated, 1.0)

    def tail_scale(self) -> float | None:
        """Mean of the exponential upper tail through the last two quantiles.

        ``S(x) = (1 - q2) * exp(-(x - v2) / beta)`` passing through both
        ``(q1, v1)`` and ``(q2, v2)``: ``beta = (v2 - v1) / ln((1-q1)/(1-q2))``.
        Exponential rather than heavier: output lengths are light-tailed (and
        capped). ``None`` with fewer than two quantiles or a flat top.
        """
        if len(self.quantiles) < 2:
            return None
        (q1, v1), (q2, v2) = self.quantiles[-2], self.quantiles[-1]
        if v2 <= v1:
            return None
        return (v2 - v1) / math.log((1.0 - q1) / (1.0 - q2))

    @classmethod
    def of(cls, value: float | LengthEstimate) -> LengthEstimate:
        """Coerce a number (or an estimate) to an estimate."""
        if isinstance(value, LengthEstimate):
            return value
        return cls(point=float(value))
