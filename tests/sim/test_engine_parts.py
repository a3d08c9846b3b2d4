"""The engines' shared parts: the arrival feed and the continuous engine's KV bookkeeping."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.policies import make_policy
from ssjf.queue import WaitingQueue
from ssjf.request import Request
from ssjf.sim.engines.arrivals import TIME_TOL, Arrivals, horizon
from ssjf.sim.engines.continuous_kv import KVBlocks, Seq


def feed(times: list[float]) -> tuple[Arrivals, WaitingQueue]:
    reqs = [Request(i, a, 10) for i, a in enumerate(times)]
    order = sorted(range(len(reqs)), key=lambda i: (reqs[i].arrival, i))
    queue = WaitingQueue(make_policy("fcfs"))
    return Arrivals(reqs, order, queue), queue


def test_admit_queues_arrivals_present_at_t_in_arrival_order() -> None:
    arrivals, queue = feed([2.0, 1.0, 3.0])
    arrivals.admit(0.5)
    assert not queue and arrivals.next_time == 1.0
    arrivals.admit(2.0)
    assert [queue.pop(2.0).id for _ in range(len(queue))] == [1, 0]
    assert arrivals.next_time == 3.0
    arrivals.admit(10.0)
    assert len(queue) == 1 and arrivals.next_time == math.inf


def test_an_arrival_within_the_tolerance_after_t_is_present_at_t() -> None:
    t = 1000.0
    just_in, just_out = horizon(t), math.nextafter(horizon(t), math.inf)
    assert just_in - t == pytest.approx(TIME_TOL * (1.0 + t), rel=1e-6)
    arrivals, queue = feed([just_in, just_out])
    arrivals.admit(t)
    assert len(queue) == 1 and arrivals.next_time == just_out


def test_until_work_jumps_over_idle_time_only() -> None:
    arrivals, queue = feed([1.0, 5.0])
    assert arrivals.until_work(0.0) == 1.0 and len(queue) == 1
    assert arrivals.until_work(2.0) == 2.0  # work waiting: no jump
    queue.pop(2.0)
    assert arrivals.until_work(2.0) == 5.0 and len(queue) == 1


@settings(max_examples=200, deadline=None)
@given(
    bs=st.integers(1, 16),
    seqs=st.lists(st.tuples(st.integers(1, 200), st.integers(0, 40)), max_size=12),
    prefill=st.integers(0, 30),
    step=st.integers(0, 60),
    k=st.integers(2, 80),
    spare=st.integers(-5, 40),
)
def test_kv_blocks_match_an_explicit_count(
    bs: int, seqs: list[tuple[int, int]], prefill: int, step: int, k: int, spare: int
) -> None:
    # Decoders start at various steps (plen, start); count blocks one by one.
    kv = KVBlocks(bs)
    kv.prefill_blocks = prefill
    started = []
    for j, (plen, start) in enumerate(seqs):
        s = Seq(j, Request(j, 0.0, plen), plen, 10**6, j)
        kv.start_decoding(s, start)
        started.append((s, plen - start))  # context = plen - start + S

    def explicit(at: int) -> int:
        return sum(-(-(base + at) // bs) for _, base in started)

    for at in range(step, step + k + 1):
        if all(base + at >= 1 for _, base in started):
            assert kv.demand(at) == explicit(at) + prefill
    if any(base + step + 1 < 1 for _, base in started):
        return  # a context below one token never happens in the engine
    total = kv.demand(step + 1) + spare
    if spare < 0:
        return  # fitting_steps requires the first step to fit
    fits = kv.fitting_steps(step, k, total)
    brute = next((j - 1 for j in range(1, k + 1) if kv.demand(step + j) > total), k)
    assert fits == brute
    for s, _ in started[::2]:
        kv.stop_decoding(s)
    rest = started[1::2]
    assert kv.decoders == len(rest)
    assert kv.decoder_blocks(step + 1) == sum(-(-(base + step + 1) // bs) for _, base in rest)
