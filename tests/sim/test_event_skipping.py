"""The event-skipping continuous engine equals the step-by-step reference."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.queue import StarvationGuard
from ssjf.sim import AffineCost, ContinuousEngine, SimResult, StepContinuousEngine, simulate
from ssjf.sim.cost import CostModel, default_affine, paper_linear
from ssjf.sim.job import Job
from tests.sim.factories import random_jobs

COSTS: list[CostModel] = [
    paper_linear(),
    default_affine(),
    AffineCost(a=0.01, b=1e-4, c=1e-3, d=1e-5, e=0.01),
]


def max_rel_diff(a: SimResult, b: SimResult) -> float:
    worst = 0.0
    for field in ("completion", "first_token", "first_scheduled"):
        x, y = getattr(a, field), getattr(b, field)
        worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12))))
    return worst


def both(jobs: list[Job], params: tuple[int, int, int, int], policy: str, cost: CostModel,
         guard: StarvationGuard | None = None) -> tuple[SimResult, SimResult]:  # fmt: skip
    fast = simulate(jobs, ContinuousEngine(*params), policy, cost=cost, guard=guard)
    ref = simulate(jobs, StepContinuousEngine(*params), policy, cost=cost, guard=guard)
    return fast, ref


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 50),
    rate=st.sampled_from([0.5, 3.0, 30.0]),
    seqs=st.integers(1, 8),
    tokens=st.sampled_from([0, 5, 64, 4096]),
    block=st.sampled_from([1, 4, 16]),
    spare_blocks=st.sampled_from([0, 1, 5, 50, 10_000]),
    policy=st.sampled_from(["fcfs", "sjf", "ssjf", "srpt", "ssrpt", "hrrn"]),
    c=st.integers(0, len(COSTS) - 1),
    guard=st.sampled_from([None, 0.5, 5.0]),
    grid=st.booleans(),
)
def test_fast_engine_matches_reference(
    seed: int, n: int, rate: float, seqs: int, tokens: int, block: int, spare_blocks: int,
    policy: str, c: int, guard: float | None, grid: bool,
) -> None:  # fmt: skip
    jobs = random_jobs(seed, n, rate=rate, grid=grid)
    need = max(-(-(j.request.prompt_tokens + j.output_tokens) // block) for j in jobs)
    params = (seqs, max(seqs, seqs + tokens), block, need + spare_blocks)
    g = StarvationGuard(max_wait_s=guard) if guard is not None else None
    fast, ref = both(jobs, params, policy, COSTS[c], g)
    assert max_rel_diff(fast, ref) <= 1e-9
    assert np.array_equal(fast.preemptions, ref.preemptions)
    assert fast.promotions == ref.promotions


def test_fast_engine_matches_reference_on_a_large_pressured_case() -> None:
    # 3,000 requests, chunked prefill (budget below typical prompts), a cache that
    # holds only a few long contexts at once: many preemptions and memory events.
    rng = random.Random(11)
    jobs = random_jobs(3, 3000, rate=4.0, max_prompt=600, max_output=400)
    for j in jobs:  # a few long prompts so that chunking spans several steps
        if rng.random() < 0.1:
            j.request.prompt_tokens = rng.randint(600, 1500)
    params = (16, 256, 16, 200)
    for policy in ("fcfs", "ssjf"):
        fast, ref = both(jobs, params, policy, default_affine())
        assert ref.preemptions.sum() > 50
        assert max_rel_diff(fast, ref) <= 1e-9
        assert np.array_equal(fast.preemptions, ref.preemptions)
