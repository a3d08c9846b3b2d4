"""Work conservation and Little's law, checked on the simulator's per-request records.

Hypothesis draws a seed and sizes; the jobs come from ``random_jobs(seed, ...)``, so
a failing example is replayed from its seed alone, and ``derandomize`` fixes which
examples a run tries.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.policies import available_policies
from ssjf.queue import StarvationGuard
from ssjf.sim import (
    BatchEngine,
    ContinuousEngine,
    CostModel,
    Engine,
    SerialEngine,
    SimResult,
    StepContinuousEngine,
    default_affine,
    paper_linear,
    simulate,
)
from ssjf.sim.job import Job
from tests.sim.factories import random_jobs

#: Every registered policy: a policy is an ordering, so on a serial engine each one is
#: non-preemptive and work-conserving, and the laws below must hold for all of them.
POLICIES = sorted(available_policies())
COSTS = {"paper_linear": paper_linear(), "affine": default_affine()}
GUARDS = [None, StarvationGuard(max_wait_s=1.0), StarvationGuard(wait_factor=2.0)]
#: Little's law holds for any engine; the small KV cache forces preemptions.
ENGINES: list[Engine] = [
    SerialEngine(),
    BatchEngine(4),
    BatchEngine(3, timeout_s=0.5),
    ContinuousEngine(4, 64, 4, 400),
    ContinuousEngine(2, 64, 4, 110),  # one request fits (<= 105 blocks), two may not
    StepContinuousEngine(4, 64, 4, 400),
]
#: Sums of the same service times in another order differ in the last bits only.
REL = 1e-9


def _service_times(jobs: list[Job], cost: CostModel) -> np.ndarray:
    """Seconds each job takes alone (``simulate`` serves an empty prompt as one token)."""
    return np.array(
        [cost.serial_job_time(max(j.request.prompt_tokens, 1), j.output_tokens) for j in jobs]
    )


def _busy_periods(arrival: np.ndarray, service: np.ndarray) -> list[tuple[float, float]]:
    """Busy periods of any work-conserving serial server (Lindley's recursion, by arrival)."""
    periods: list[tuple[float, float]] = []
    for i in np.argsort(arrival, kind="stable"):
        a = float(arrival[i])
        if periods and a <= periods[-1][1]:
            periods[-1] = (periods[-1][0], periods[-1][1] + float(service[i]))
        else:
            periods.append((a, a + float(service[i])))
    return periods


def _time_integral(up: np.ndarray, down: np.ndarray) -> float:
    """Integral over time of the count of intervals [up_i, down_i) open, by a sweep."""
    times = np.concatenate([up, down])
    steps = np.concatenate([np.ones(len(up)), -np.ones(len(down))])
    order = np.lexsort((-steps, times))  # at a tie, opens first (zero-length intervals)
    times, count = times[order], np.cumsum(steps[order])
    assert count.min() >= 0, "an interval closed before it opened"
    return float(np.sum(count[:-1] * np.diff(times)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40),
       rate=st.sampled_from([0.3, 3.0, 30.0]), cost=st.sampled_from(sorted(COSTS)),
       guard=st.sampled_from(GUARDS))  # fmt: skip
def test_serial_engine_conserves_work_under_every_policy(
    seed: int, n: int, rate: float, cost: str, guard: StarvationGuard | None
) -> None:
    """Busy time is the sum of service times, and busy periods (so the last completion)
    are the same for every policy: the ones Lindley's recursion gives from arrivals."""
    jobs = random_jobs(seed, n, rate=rate)
    model = COSTS[cost]
    service = _service_times(jobs, model)
    arrival = np.array([j.request.arrival for j in jobs])
    expected = _busy_periods(arrival, service)
    for policy in POLICIES:
        res = simulate(jobs, SerialEngine(), policy, cost=model, guard=guard)
        start, end = res.first_scheduled, res.completion
        # Each request runs alone for its own service time, one after another.
        assert end - start == pytest.approx(service, rel=REL), policy
        order = np.argsort(start, kind="stable")
        assert (start[order][1:] >= end[order][:-1]).all(), f"{policy}: two in service"
        # Idle only when nothing waits: the engine's busy periods are the work's.
        periods: list[tuple[float, float]] = []
        for i in order:
            if periods and start[i] <= periods[-1][1] * (1 + REL):
                periods[-1] = (periods[-1][0], float(end[i]))
            else:
                periods.append((float(start[i]), float(end[i])))
        assert len(periods) == len(expected), policy
        assert np.ravel(periods) == pytest.approx(np.ravel(expected), rel=REL), policy
        busy = sum(b - a for a, b in periods)
        assert busy == pytest.approx(float(service.sum()), rel=REL), policy
        assert end.max() == pytest.approx(expected[-1][1], rel=REL), policy


def _check_littles_law(res: SimResult) -> None:
    """L = lambda * W over the run [first arrival, last completion], for the requests in
    the system and for those waiting, with each time-average integrated by a sweep."""
    n = len(res)
    span = res.makespan
    throughput = n / span  # every request arrives and completes inside the span
    in_system = _time_integral(res.arrival, res.completion) / span
    assert in_system == pytest.approx(throughput * float(res.jct.mean()), rel=REL)
    waiting = _time_integral(res.arrival, res.first_scheduled) / span
    assert waiting == pytest.approx(throughput * float(res.queueing_delay.mean()), rel=REL)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40),
       rate=st.sampled_from([0.3, 3.0, 30.0]), e=st.integers(0, len(ENGINES) - 1),
       policy=st.sampled_from(POLICIES))  # fmt: skip
def test_littles_law_holds_on_the_records_of_every_engine(
    seed: int, n: int, rate: float, e: int, policy: str
) -> None:
    jobs = random_jobs(seed, n, rate=rate, max_output=120)
    res = simulate(jobs, ENGINES[e], policy, cost=default_affine())
    assert np.isfinite(res.completion).all()
    _check_littles_law(res)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40),
       rate=st.sampled_from([0.3, 3.0, 30.0]), policy=st.sampled_from(POLICIES))  # fmt: skip
def test_serial_utilisation_is_throughput_times_service_time(
    seed: int, n: int, rate: float, policy: str
) -> None:
    """Little's law for the server alone: mean number in service (at most one) =
    throughput x mean service time, and in system = waiting + in service."""
    jobs = random_jobs(seed, n, rate=rate)
    cost = paper_linear()
    res = simulate(jobs, SerialEngine(), policy, cost=cost)
    span = res.makespan
    in_service = _time_integral(res.first_scheduled, res.completion) / span
    assert in_service <= 1.0 + REL
    mean_service = float(_service_times(jobs, cost).mean())
    assert in_service == pytest.approx(n / span * mean_service, rel=REL)
    in_system = _time_integral(res.arrival, res.completion) / span
    waiting = _time_integral(res.arrival, res.first_scheduled) / span
    assert in_system == pytest.approx(waiting + in_service, rel=REL)
