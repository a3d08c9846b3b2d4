"""Engine rules: completion exactly once, work conservation, batch semantics, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.policies import make_policy
from ssjf.queue import WaitingQueue
from ssjf.sim import (
    BatchEngine,
    ContinuousEngine,
    Engine,
    SerialEngine,
    StepContinuousEngine,
    default_affine,
    paper_linear,
    parse_engine,
    simulate,
)
from ssjf.sim.engines import RunContext
from ssjf.sim.job import Job
from tests.sim.factories import job, random_jobs

ENGINES: list[Engine] = [
    SerialEngine(),
    BatchEngine(4),
    BatchEngine(3, timeout_s=0.5),
    BatchEngine(3, group=True),
    ContinuousEngine(4, 64, 4, 400),
    StepContinuousEngine(4, 64, 4, 400),
    ContinuousEngine(8),
]
POLICIES = ["fcfs", "sjf", "ssjf", "srpt", "ssrpt", "hrrn"]


class WriteOnce(list):  # type: ignore[type-arg]
    """A list of NaNs that fails if an engine writes the same slot twice."""

    def __setitem__(self, i, value):  # type: ignore[no-untyped-def]
        assert math.isnan(self[i]), f"request {i} recorded twice"
        super().__setitem__(i, value)


def run_counting(jobs: list[Job], engine: Engine, policy: str) -> RunContext:
    """Run ``engine`` like ``simulate`` does, with write-once completion records."""
    from ssjf.sim.simulate import fresh_request

    reqs = [fresh_request(j.request) for j in jobs]
    lengths = [j.output_tokens for j in jobs]
    index = {id(r): i for i, r in enumerate(reqs)}
    pol = make_policy(
        policy, truth=(lambda r: lengths[index[id(r)]]) if policy in ("sjf", "srpt") else None
    )
    n = len(jobs)
    ctx = RunContext(
        reqs=reqs, prompts=[max(r.prompt_tokens, 1) for r in reqs], lengths=lengths,
        order=sorted(range(n), key=lambda i: (reqs[i].arrival, i)), queue=WaitingQueue(pol),
        policy=pol, cost=default_affine(), index=index, first_scheduled=[math.nan] * n,
        first_token=[math.nan] * n, completion=WriteOnce([math.nan] * n),
    )  # fmt: skip
    engine.validate(ctx.prompts, lengths)
    engine.run(ctx)
    return ctx


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), e=st.integers(0, len(ENGINES) - 1),
       p=st.sampled_from(POLICIES))  # fmt: skip
def test_every_request_completes_exactly_once(seed: int, n: int, e: int, p: str) -> None:
    jobs = random_jobs(seed, n, rate=3.0)
    ctx = run_counting(jobs, ENGINES[e], p)
    comp = np.asarray(ctx.completion, dtype=float)
    assert np.isfinite(comp).all()
    arrival = np.array([j.request.arrival for j in jobs])
    assert (np.asarray(ctx.first_scheduled) >= arrival).all()
    assert (np.asarray(ctx.first_token) >= np.asarray(ctx.first_scheduled)).all()
    assert (comp >= np.asarray(ctx.first_token)).all()
    assert [r.generated for r in ctx.reqs] == [j.output_tokens for j in jobs]
    assert len(ctx.queue) == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), p=st.sampled_from(POLICIES),
       rate=st.sampled_from([0.2, 2.0, 20.0]))  # fmt: skip
def test_serial_engine_never_idles_while_requests_wait(
    seed: int, n: int, p: str, rate: float
) -> None:
    jobs = random_jobs(seed, n, rate=rate)
    res = simulate(jobs, SerialEngine(), p, cost=paper_linear())
    order = np.argsort(res.first_scheduled, kind="stable")
    busy_until = 0.0
    started = np.zeros(n, dtype=bool)
    for i in order:
        waiting = ~started & (res.arrival <= busy_until)
        if waiting.any():
            assert res.first_scheduled[i] == busy_until  # work was waiting: start at once
        else:
            assert res.first_scheduled[i] == res.arrival[~started].min()  # idle until next arrival
        started[i] = True
        busy_until = res.completion[i]


def test_batch_members_complete_together_and_timeout_is_policy_blind() -> None:
    jobs = [
        job(0, 0.0, 10, 5, 5),
        job(1, 0.2, 10, 50, 50),
        job(2, 0.3, 10, 1, 1),
        job(3, 5.0, 10, 2, 2),
    ]
    cost = paper_linear()
    results = {
        p: simulate(jobs, BatchEngine(3, timeout_s=1.0), p, cost=cost) for p in ("fcfs", "ssjf")
    }
    for res in results.values():
        # Idle with work at t=0; the batch fills (3 requests) at t=0.3 and runs one
        # prefill step (0.02 + 0.1 per member) and 49 decode steps for its longest member.
        assert res.first_scheduled[:3].tolist() == [0.3, 0.3, 0.3]
        assert res.completion[:3] == pytest.approx([0.3 + 0.02 + 0.3 + 49 * 0.02] * 3)
        # Request 3 arrives to an idle engine at 5.0: waits the full timeout, runs alone.
        assert res.first_scheduled[3] == pytest.approx(6.0)
        assert res.completion[3] == pytest.approx(6.0 + 0.12 + 0.02)
    assert np.array_equal(results["fcfs"].completion, results["ssjf"].completion)


def test_batch_takes_requests_in_policy_order() -> None:
    # Job 0 runs alone from t=0; meanwhile a long job (5) and four short ones queue.
    jobs = [job(0, 0.0, 10, 100, 100)] + [job(i, 0.01 * i, 10, 3, 3) for i in range(1, 5)]
    jobs.append(job(5, 0.005, 10, 100, 100))
    fcfs = simulate(jobs, BatchEngine(2), "fcfs", cost=paper_linear())
    ssjf = simulate(jobs, BatchEngine(2), "ssjf", cost=paper_linear())
    # FCFS batches: [5, 1], [2, 3], [4]; SSJF batches: [1, 2], [3, 4], [5].
    assert fcfs.first_scheduled[5] == fcfs.first_scheduled[1] < fcfs.first_scheduled[2]
    assert ssjf.first_scheduled[1] == ssjf.first_scheduled[2] < ssjf.first_scheduled[3]
    assert ssjf.first_scheduled[1] > ssjf.first_scheduled[0]
    assert ssjf.first_scheduled[1] == fcfs.first_scheduled[1]
    assert ssjf.first_scheduled[1:5].max() < ssjf.first_scheduled[5]


def test_grouped_batches_gather_similar_predicted_lengths() -> None:
    # Job 0 occupies the engine; then eight requests queue with predictions 10,300,11,...
    preds = [10, 300, 11, 290, 12, 310, 9, 305]
    jobs = [job(0, 0.0, 10, 50, 50)] + [
        job(i + 1, 0.01 * (i + 1), 10, p, p) for i, p in enumerate(preds)
    ]
    for policy in ("fcfs", "ssjf"):
        res = simulate(jobs, BatchEngine(4, group=True), policy, cost=paper_linear())
        batches: dict[float, list[int]] = {}
        for i in range(1, 9):
            batches.setdefault(float(res.first_scheduled[i]), []).append(preds[i - 1])
        groups = sorted(sorted(b) for b in batches.values())
        assert groups == [[9, 10, 11, 12], [290, 300, 305, 310]]
    plain = simulate(jobs, BatchEngine(4), "fcfs", cost=paper_linear())
    assert plain.first_scheduled[1] == plain.first_scheduled[2]  # 10 and 300 together


def test_continuous_head_of_line_never_skips_the_head() -> None:
    # A 2-block cache of 4-token blocks: the long-prompt head waits for free blocks,
    # and the short request behind it must not jump ahead.
    jobs = [job(0, 0.0, 4, 3), job(1, 0.001, 8, 1), job(2, 0.002, 1, 1)]
    for engine in (ContinuousEngine(4, 64, 4, 2), StepContinuousEngine(4, 64, 4, 2)):
        res = simulate(jobs, engine, "fcfs", cost=paper_linear())
        assert res.first_scheduled[2] >= res.first_scheduled[1] >= res.completion[0] - 1e-12


def test_preempted_request_is_recomputed_and_counted() -> None:
    # Two requests whose contexts outgrow a 3-block cache: the worse one (FCFS: the later) is evicted.
    jobs = [job(0, 0.0, 4, 6), job(1, 0.0, 4, 6)]
    for engine in (ContinuousEngine(2, 64, 4, 3), StepContinuousEngine(2, 64, 4, 3)):
        res = simulate(jobs, engine, "fcfs", cost=paper_linear())
        assert res.preemptions.tolist() == [0, 1]
        assert res.completion[1] > res.completion[0]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.spec)
@pytest.mark.parametrize("policy", ["fcfs", "sjf", "ssjf", "hrrn"])
def test_same_inputs_give_identical_results(engine: Engine, policy: str) -> None:
    jobs = random_jobs(7, 60, rate=4.0)
    a = simulate(jobs, engine, policy, cost=default_affine())
    b = simulate(jobs, engine, policy, cost=default_affine())
    for field in ("first_scheduled", "first_token", "completion", "preemptions"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert [j.request.generated for j in jobs] == [0] * len(jobs)  # inputs untouched


def test_oracle_policies_see_truth_and_results_carry_metadata() -> None:
    jobs = [job(0, 0.0, 10, 50, 1), job(1, 0.0, 10, 1, 50), job(2, 0.0, 10, 20, None)]
    sjf = simulate(jobs, SerialEngine(), "sjf", cost=paper_linear())
    ssjf = simulate(jobs, SerialEngine(), "ssjf", cost=paper_linear())
    assert np.argsort(sjf.first_scheduled).tolist() == [1, 2, 0]  # true lengths
    assert np.argsort(ssjf.first_scheduled)[0] == 2  # no estimate -> predicted 0 -> first
    assert sjf.policy == "sjf" and sjf.engine == "serial"
    assert np.isnan(ssjf.predicted_tokens[2]) and ssjf.predicted_tokens[0] == 1
    assert ssjf.tpot[0] == pytest.approx(0.02)


def test_parse_engine_specs_and_errors() -> None:
    assert parse_engine("serial") == SerialEngine()
    assert parse_engine("batch:8") == BatchEngine(8)
    assert parse_engine("batch:8:timeout=2") == BatchEngine(8, 2.0)
    assert parse_engine("batch:4:timeout=1:group") == BatchEngine(4, 1.0, group=True)
    assert parse_engine(BatchEngine(4, 1.0, group=True).spec) == BatchEngine(4, 1.0, group=True)
    assert parse_engine("continuous:32") == ContinuousEngine(32)
    e = parse_engine("continuous:16:tokens=512:block=32:blocks=100")
    assert e == ContinuousEngine(16, 512, 32, 100)
    assert parse_engine(e.spec) == e
    assert parse_engine("continuous-step:4") == StepContinuousEngine(4)
    for bad, msg in [
        ("gpu", "unknown engine"), ("batch", "batch size"), ("batch:x", "integer"),
        ("batch:4:wait=1", "unknown option"), ("continuous:4:foo=1", "unknown option"),
        ("continuous:0", "max_num_seqs must be >= 1"), ("batch:0", "max_batch"),
        ("continuous:64:tokens=32", "max_num_batched_tokens must be >= max_num_seqs"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            parse_engine(bad)


def test_request_too_large_for_the_cache_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"request #0: .* need 4 KV blocks .* has 3"):
        simulate([job(0, 0.0, 10, 4)], ContinuousEngine(2, 64, 4, 3), "fcfs", cost=paper_linear())
