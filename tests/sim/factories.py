"""Tiny factories for simulator tests."""

from __future__ import annotations

import random

from ssjf.estimate import LengthEstimate
from ssjf.request import Request
from ssjf.sim import Job


def job(i: int, arrival: float, prompt: int, output: int, estimate: float | None = None) -> Job:
    """One job; ``estimate=None`` leaves the request without a prediction."""
    est = LengthEstimate(estimate) if estimate is not None else None
    return Job(Request(i, arrival, prompt, estimate=est), output)


def random_jobs(seed: int, n: int, *, rate: float = 2.0, max_prompt: int = 300,
                max_output: int = 200, grid: bool = False) -> list[Job]:  # fmt: skip
    """``n`` jobs with Poisson arrivals and uniform lengths; ``grid`` rounds arrivals to ms."""
    rng = random.Random(seed)
    t = 0.0
    out = []
    for i in range(n):
        t += rng.expovariate(rate)
        a = round(t, 3) if grid else t
        out.append(job(i, a, rng.randint(0, max_prompt), rng.randint(1, max_output),
                       rng.randint(1, max_output)))  # fmt: skip
    return out
