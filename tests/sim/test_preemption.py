"""Priced preemption in the engines: fast equals reference, nothing lost, bounds respected."""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate
from ssjf.policies import make_policy
from ssjf.queue import StarvationGuard, WaitingQueue
from ssjf.request import Request
from ssjf.sim import (
    ContinuousEngine,
    Engine,
    SerialEngine,
    SimResult,
    StepContinuousEngine,
    simulate,
)
from ssjf.sim.cost import CostModel, default_affine, paper_linear
from ssjf.sim.engines import RunContext
from ssjf.sim.job import Job
from ssjf.sim.preemption import PreemptionRule

COSTS: list[CostModel] = [paper_linear(), default_affine()]
RULES = [
    PreemptionRule(),
    PreemptionRule(max_per_request=3, early_fraction=1.0, price=0.0),
    PreemptionRule(max_per_request=2, early_fraction=0.3, price=2.0),
]


def jobs_with_estimates(seed: int, n: int, rate: float, noise: float) -> list[Job]:
    """Poisson arrivals, a mix of short and long outputs, estimates = truth x lognormal noise.

    Long jobs with short ones arriving behind them are what makes preemption fire.
    """
    rng = random.Random(seed)
    t = 0.0
    out = []
    for i in range(n):
        t += rng.expovariate(rate)
        length = rng.randint(1, 20) if rng.random() < 0.6 else rng.randint(100, 400)
        est = max(1.0, length * math.exp(rng.gauss(0.0, noise))) if noise >= 0 else None
        out.append(
            Job(
                Request(i, t, rng.randint(0, 200), estimate=LengthEstimate(est) if est else None),
                length,
            )
        )
    return out


def same(fast: SimResult, ref: SimResult) -> None:
    for field in ("completion", "first_token", "first_scheduled"):
        x, y = getattr(fast, field), getattr(ref, field)
        assert np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)) <= 1e-9, field
    assert np.array_equal(fast.preemptions, ref.preemptions)
    assert np.array_equal(fast.recomputed_tokens, ref.recomputed_tokens)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 40),
    rate=st.sampled_from([0.5, 3.0, 30.0]),
    seqs=st.integers(1, 6),
    tokens=st.sampled_from([0, 5, 64, 4096]),
    block=st.sampled_from([1, 4, 16]),
    spare_blocks=st.sampled_from([0, 1, 5, 50, 10_000]),
    policy=st.sampled_from(["fcfs", "ssjf", "ssrpt", "srpt", "hrrn"]),
    c=st.integers(0, len(COSTS) - 1),
    r=st.integers(0, len(RULES) - 1),
    noise=st.sampled_from([-1.0, 0.0, 0.5]),
    guard=st.sampled_from([None, None, 0.5, 5.0]),
)
def test_fast_engine_matches_reference_with_preemption(
    seed: int, n: int, rate: float, seqs: int, tokens: int, block: int, spare_blocks: int,
    policy: str, c: int, r: int, noise: float, guard: float | None,
) -> None:  # fmt: skip
    jobs = jobs_with_estimates(seed, n, rate, noise)
    need = max(-(-(j.request.prompt_tokens + j.output_tokens) // block) for j in jobs)
    params = (seqs, seqs + tokens, block, need + spare_blocks)
    g = StarvationGuard(max_wait_s=guard) if guard is not None else None
    cost, rule = COSTS[c], RULES[r]
    fast = simulate(jobs, ContinuousEngine(*params), policy, cost=cost, guard=g, preemption=rule)
    ref = simulate(jobs, StepContinuousEngine(*params), policy, cost=cost, guard=g, preemption=rule)
    same(fast, ref)
    assert fast.promotions == ref.promotions


def test_fast_engine_matches_reference_on_a_large_preempting_case() -> None:
    # Few slots, a cache that holds a few long contexts: the rule's preemptions and
    # memory evictions interleave over thousands of requests.
    jobs = jobs_with_estimates(5, 2000, 1.5, 0.3)
    rule = PreemptionRule(max_per_request=2, early_fraction=0.7, price=0.5)
    for params in ((3, 256, 16, 10_000), (8, 256, 16, 60)):
        for policy in ("ssrpt", "srpt"):
            fast = simulate(jobs, ContinuousEngine(*params), policy, cost=default_affine(),
                            preemption=rule)  # fmt: skip
            ref = simulate(jobs, StepContinuousEngine(*params), policy, cost=default_affine(),
                           preemption=rule)  # fmt: skip
            same(fast, ref)
            plain = simulate(jobs, ContinuousEngine(*params), policy, cost=default_affine())
            # The rule acted: more preemptions than memory pressure alone causes.
            assert ref.preemptions.sum() > plain.preemptions.sum() + 20


class RecordingQueue(WaitingQueue):
    """Records (generated, predicted, preemptions) of every request put back after a preemption."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.requeued: list[tuple[int, float, int]] = []

    def add(self, req: Request, now: float) -> None:
        if req.preemptions:
            self.requeued.append((req.generated, req.predicted_tokens, req.preemptions))
        super().add(req, now)


class WriteOnce(list):  # type: ignore[type-arg]
    """A list of NaNs that fails if an engine records the same request twice."""

    def __setitem__(self, i, value):  # type: ignore[no-untyped-def]
        assert math.isnan(self[i]), f"request {i} completed twice"
        super().__setitem__(i, value)


def run_recording(jobs: list[Job], engine: Engine, policy: str, rule: PreemptionRule,
                  cost: CostModel) -> tuple[RunContext, RecordingQueue]:  # fmt: skip
    """Run like ``simulate`` does, with write-once completions and a recording queue."""
    from ssjf.sim.simulate import fresh_request

    reqs = [fresh_request(j.request) for j in jobs]
    lengths = [j.output_tokens for j in jobs]
    index = {id(r): i for i, r in enumerate(reqs)}
    pol = make_policy(policy, truth=(lambda r: lengths[index[id(r)]]) if policy == "srpt" else None)
    n = len(jobs)
    queue = RecordingQueue(pol)
    ctx = RunContext(
        reqs=reqs, prompts=[max(r.prompt_tokens, 1) for r in reqs], lengths=lengths,
        order=sorted(range(n), key=lambda i: (reqs[i].arrival, i)), queue=queue,
        policy=pol, cost=cost, index=index, first_scheduled=[math.nan] * n,
        first_token=[math.nan] * n, completion=WriteOnce([math.nan] * n), preemption=rule,
    )  # fmt: skip
    engine.validate(ctx.prompts, lengths)
    engine.run(ctx)
    return ctx, queue


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 40),
    rate=st.sampled_from([0.5, 3.0, 30.0]),
    e=st.integers(0, 2),
    policy=st.sampled_from(["ssjf", "ssrpt", "srpt"]),
    r=st.integers(0, len(RULES) - 1),
    c=st.integers(0, len(COSTS) - 1),
)
def test_preemption_loses_nothing_and_respects_its_bounds(
    seed: int, n: int, rate: float, e: int, policy: str, r: int, c: int
) -> None:
    # Ample KV cache: every preemption is the rule's, so its bounds must hold exactly.
    engine = [SerialEngine(), ContinuousEngine(2, 64, 4, 100_000),
              StepContinuousEngine(3, 4096, 16, 100_000)][e]  # fmt: skip
    rule = RULES[r]
    jobs = jobs_with_estimates(seed, n, rate, 0.5)
    ctx, queue = run_recording(jobs, engine, policy, rule, COSTS[c])
    # Every request completed exactly once (WriteOnce), with its true length.
    assert all(math.isfinite(x) for x in ctx.completion)
    assert [r.generated for r in ctx.reqs] == ctx.lengths
    pre = [r.preemptions for r in ctx.reqs]
    assert max(pre) <= rule.max_per_request
    assert len(queue.requeued) == sum(pre)
    for generated, predicted, count in queue.requeued:
        assert 1 <= count <= rule.max_per_request
        assert 1 <= generated <= rule.early_fraction * predicted
    # A preempted request threw its cached tokens away (prompt + generated - 1 each time).
    for i, req in enumerate(ctx.reqs):
        assert (ctx.recomputed[i] > 0) == (req.preemptions > 0)
    # Times are ordered: scheduled, first token, completion.
    for i in range(n):
        assert ctx.reqs[i].arrival <= ctx.first_scheduled[i] < ctx.first_token[i]
        assert ctx.first_token[i] <= ctx.completion[i]


def test_preemption_with_memory_pressure_loses_nothing() -> None:
    # A tiny cache: memory evictions (unbounded) and the rule's preemptions together.
    jobs = jobs_with_estimates(9, 300, 3.0, 0.5)
    need = max(-(-(j.request.prompt_tokens + j.output_tokens) // 4) for j in jobs)
    for engine in (ContinuousEngine(4, 64, 4, need + 2), StepContinuousEngine(4, 64, 4, need + 2)):
        ctx, _ = run_recording(jobs, engine, "ssrpt", RULES[1], default_affine())
        assert [r.generated for r in ctx.reqs] == ctx.lengths
        assert sum(r.preemptions for r in ctx.reqs) > 0


def test_a_rule_that_never_pays_changes_nothing() -> None:
    # Same decisions as without a rule; the fast engines only stop at more boundaries
    # (float sums split differently), the reference steps anyway (bit-identical).
    never = PreemptionRule(max_per_request=5, early_fraction=1.0, price=1e12)
    jobs = jobs_with_estimates(2, 150, 3.0, 0.5)
    for engine in (SerialEngine(), ContinuousEngine(2, 64, 4, 5000),
                   StepContinuousEngine(2, 64, 4, 5000)):  # fmt: skip
        for policy in ("ssrpt", "fcfs"):
            a = simulate(jobs, engine, policy, cost=default_affine())
            b = simulate(jobs, engine, policy, cost=default_affine(), preemption=never)
            assert b.preemptions.sum() == 0 and b.recomputed_tokens.sum() == 0
            assert np.allclose(a.completion, b.completion, rtol=1e-12, atol=0)
            if isinstance(engine, StepContinuousEngine):
                assert np.array_equal(a.completion, b.completion)
