"""Queueing laws in simulation: oracle SJF is optimal; the starvation guard keeps its promise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.queue import StarvationGuard
from ssjf.sim import SerialEngine, paper_linear, simulate
from ssjf.sim.simulate import fresh_request
from tests.sim.factories import job, random_jobs


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_oracle_sjf_minimises_mean_jct_over_all_orders(lengths: list[int]) -> None:
    cost = paper_linear()
    jobs = [job(i, 0.0, 10, length) for i, length in enumerate(lengths)]
    res = simulate(jobs, SerialEngine(), "sjf", cost=cost)
    service = [cost.serial_job_time(10, length) for length in lengths]
    best = min(
        sum(itertools.accumulate(service[i] for i in perm)) / len(lengths)
        for perm in itertools.permutations(range(len(lengths)))
    )
    assert res.jct.mean() == pytest.approx(best, rel=1e-12)


guards = st.sampled_from(
    [
        StarvationGuard(max_wait_s=2.0),
        StarvationGuard(max_wait_s=0.0),
        StarvationGuard(wait_factor=3.0),
        StarvationGuard(max_wait_s=5.0, wait_factor=2.0),
    ]
)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), guard=guards,
       policy=st.sampled_from(["sjf", "ssjf", "srpt", "fcfs"]))  # fmt: skip
def test_starvation_guard_promise_holds_on_the_serial_engine(
    seed: int, n: int, guard: StarvationGuard, policy: str
) -> None:
    """The promise in ``StarvationGuard``'s docstring, and the wait bound it implies."""
    jobs = random_jobs(seed, n, rate=6.0, max_output=80)  # ~1.8 s of work per second: overload
    res = simulate(jobs, SerialEngine(), policy, cost=paper_linear(), guard=guard)
    deadline = np.array([guard.deadline(fresh_request(j.request)) for j in jobs])
    # Queue order among overdue requests: earliest deadline, then earlier enqueue.
    rank = {
        i: r for r, i in enumerate(sorted(range(n), key=lambda i: (deadline[i], res.arrival[i], i)))
    }
    start, arrival, completion = res.first_scheduled, res.arrival, res.completion
    service = completion - start
    for i in range(n):
        t = start[i]
        waiting = [j for j in range(n) if arrival[j] <= t and start[j] >= t]
        overdue = [j for j in waiting if deadline[j] <= t]
        if overdue:  # the promise: the earliest-deadline overdue request is handed out
            assert i == min(overdue, key=rank.__getitem__)
        # The bound: start <= end of the job in service at the deadline + the
        # service of requests ahead of it in deadline order that are still waiting.
        d = deadline[i]
        if t <= d:
            continue
        in_service = [k for k in range(n) if start[k] < d < completion[k]]
        t0 = completion[in_service[0]] if in_service else d
        ahead = sum(service[j] for j in range(n) if j != i and rank[j] < rank[i] and start[j] >= d)
        assert t <= t0 + ahead + 1e-9


def test_guard_stops_an_adversarial_stream_of_short_jobs_starving_a_long_one() -> None:
    # A long job arrives behind a few short ones; then short jobs (0.2 s of service)
    # arrive every 0.19 s for 100 s, so one is always waiting. Oracle SJF without a
    # guard serves every short job first and the long job waits out the whole stream.
    jobs = [job(i, 0.0, 10, 5, 5) for i in range(5)] + [job(5, 0.001, 10, 1000, 1000)]
    jobs += [job(i, 0.19 * (i - 5), 10, 5, 5) for i in range(6, 530)]
    cost = paper_linear()
    short = cost.serial_job_time(10, 5)
    unguarded = simulate(jobs, SerialEngine(), "sjf", cost=cost)
    assert unguarded.queueing_delay[5] > 90.0
    guarded = simulate(
        jobs, SerialEngine(), "sjf", cost=cost, guard=StarvationGuard(max_wait_s=10.0)
    )
    # The bound from the docstring: its deadline (10 s), plus the rest of the job in
    # service then, plus the requests with earlier deadlines still waiting (none: the
    # five earlier short jobs were served long before).
    assert guarded.queueing_delay[5] <= 10.0 + short + 1e-9
    assert guarded.queueing_delay[5] > 10.0 - short  # SJF still served shorter work first
    assert guarded.promotions >= 1
