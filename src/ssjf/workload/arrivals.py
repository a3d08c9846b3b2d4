"""Arrival processes: Poisson, Gamma (burstiness), uniform, and trace timestamps.

Every generator returns ``n`` non-decreasing arrival times in seconds starting
near 0, drawn from the ``numpy.random.Generator`` it is given (same seed, same
times).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Re-exported: trace timestamps are parsed here for every source that has them.
from ssjf.workload.timestamps import parse_timestamps

__all__ = [
    "ArrivalSpec",
    "gamma_arrivals",
    "parse_timestamps",
    "poisson_arrivals",
    "scale_trace",
    "uniform_arrivals",
]

FloatArray = np.ndarray


def poisson_arrivals(n: int, rate: float, rng: np.random.Generator) -> FloatArray:
    """Poisson process: exponential gaps with mean ``1 / rate``; first arrival at 0."""
    _check(n, rate)
    gaps = rng.exponential(1.0 / rate, size=n)
    return _from_gaps(gaps)


def gamma_arrivals(n: int, rate: float, cv: float, rng: np.random.Generator) -> FloatArray:
    """Gamma renewal process with mean gap ``1 / rate`` and gap coefficient of variation ``cv``.

    ``cv = 1`` is a Poisson process; ``cv > 1`` is burstier, ``cv < 1`` more regular.
    """
    _check(n, rate)
    if not cv > 0:
        raise ValueError(f"gamma arrivals: cv must be > 0, got {cv}")
    shape = 1.0 / (cv * cv)
    gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    return _from_gaps(gaps)


def uniform_arrivals(n: int, rate: float) -> FloatArray:
    """Evenly spaced arrivals ``1 / rate`` apart, starting at 0."""
    _check(n, rate)
    return np.arange(n, dtype=np.float64) / rate


def _check(n: int, rate: float) -> None:
    if n < 0:
        raise ValueError(f"number of arrivals must be >= 0, got {n}")
    if not (rate > 0 and np.isfinite(rate)):
        raise ValueError(f"arrival rate must be a positive finite number, got {rate}")


def _from_gaps(gaps: FloatArray) -> FloatArray:
    times = np.cumsum(gaps)
    if times.size:
        times -= times[0]  # the first request arrives at t = 0
    return times


def scale_trace(times: FloatArray, rate: float | None) -> FloatArray:
    """Trace timestamps, sorted and shifted to start at 0, rescaled to mean ``rate`` req/s.

    Scaling stretches or squeezes time uniformly, keeping the trace's burst pattern;
    ``rate=None`` keeps the original times.
    """
    t = np.sort(np.asarray(times, dtype=np.float64))
    if t.size == 0:
        return t
    t = t - t[0]
    if rate is None:
        return t
    if not (rate > 0 and np.isfinite(rate)):
        raise ValueError(f"arrival rate must be a positive finite number, got {rate}")
    if t.size < 2 or t[-1] <= 0:
        raise ValueError("a trace needs at least two distinct timestamps to be rate-scaled")
    # n arrivals span n-1 gaps; the mean gap must become 1/rate.
    native = (t.size - 1) / t[-1]
    return t * (native / rate)


@dataclass(frozen=True, slots=True)
class ArrivalSpec:
    """Which arrival process: ``poisson``, ``gamma:CV``, ``uniform`` or ``trace``.

    ``trace`` takes the source's own timestamps (e.g. the Azure trace), rate-scaled.
    """

    kind: str = "poisson"
    cv: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> ArrivalSpec:
        """Parse ``poisson`` | ``gamma:2.0`` | ``uniform`` | ``trace``."""
        name, _, arg = spec.strip().partition(":")
        name = name.lower()
        if name in ("poisson", "uniform", "trace") and not arg:
            return cls(kind=name)
        if name == "gamma":
            try:
                cv = float(arg) if arg else 2.0
            except ValueError:
                raise ValueError(f"arrival spec {spec!r}: gamma:CV needs a number") from None
            if cv <= 0:
                raise ValueError(f"arrival spec {spec!r}: cv must be > 0")
            return cls(kind="gamma", cv=cv)
        raise ValueError(
            f"unknown arrival process {spec!r}; use poisson, gamma:CV, uniform or trace"
        )

    def generate(
        self,
        n: int,
        rate: float,
        rng: np.random.Generator,
        trace: FloatArray | None = None,
    ) -> FloatArray:
        """``n`` arrival times at mean ``rate`` req/s."""
        if self.kind == "poisson":
            return poisson_arrivals(n, rate, rng)
        if self.kind == "gamma":
            return gamma_arrivals(n, rate, self.cv, rng)
        if self.kind == "uniform":
            return uniform_arrivals(n, rate)
        if trace is None:
            raise ValueError("arrival process 'trace' needs a source with timestamps (e.g. azure)")
        if len(trace) < n:
            raise ValueError(f"the trace has {len(trace)} timestamps, fewer than the {n} requested")
        return scale_trace(np.asarray(trace)[:n], rate)

    def __str__(self) -> str:
        return f"gamma:{self.cv:g}" if self.kind == "gamma" else self.kind
