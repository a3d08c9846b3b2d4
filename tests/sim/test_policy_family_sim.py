"""The policy family in the simulator: service-time order, and MLFQ promotion bounds starvation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.sim import parse_engine, simulate
from ssjf.sim.cost import AffineCost
from tests.sim.factories import job

#: Prefill-heavy pricing: a decode step of 20 ms, a prompt token of 1 ms (ServiceTime.from_cost
#: reads exactly these rates from it).
COST = AffineCost(b=0.001, c=0.02)
SERIAL = parse_engine("serial")


def test_size_service_serves_the_short_prompt_first_when_prefill_dominates() -> None:
    jobs = [
        job(0, 0.0, 1, 100, estimate=100),  # busy until ~2 s: the other two queue up
        job(1, 0.5, 20_000, 10, estimate=10),  # ~20 s of prefill, 10 tokens
        job(2, 0.6, 100, 500, estimate=500),  # ~0.1 s of prefill, 500 tokens (~10 s)
    ]
    for name in ("sjf", "ssjf"):
        tokens = simulate(jobs, SERIAL, name, cost=COST)
        service = simulate(jobs, SERIAL, name, cost=COST, policy_params={"size": "service"})
        assert tokens.first_scheduled[1] < tokens.first_scheduled[2], name
        assert service.first_scheduled[2] < service.first_scheduled[1], name
        # Serving the smaller job first lowers the mean (the point of the key).
        assert service.jct.mean() < tokens.jct.mean(), name


def _mlfq_jobs(gaps: list[float], prompts: list[int], outputs: list[int]) -> list:
    t, out = 0.0, []
    for i, (gap, p, o) in enumerate(zip(gaps, prompts, outputs, strict=False)):
        t += gap
        out.append(job(i, t, p, o))
    return out


_sizes = st.integers(2, 18)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=_sizes,
    promote=st.floats(0.0, 30.0),
)
def test_mlfq_promotion_bounds_every_wait_on_a_serial_engine(data, n, promote) -> None:
    """The bound proved here, serial engine (non-preemptive, never idle with work waiting).

    Let ``t0 = a_r + P`` (P = ``promote_after_s``). At any pop at ``t >= t0`` with
    ``r`` still waiting, ``r`` has waited ``>= P``, so its level is 0 and its key
    is ``a_r``; any ``j`` that arrived after ``r`` has a key ``>= a_j > a_r`` (level
    ``>= 0``; ties at equal arrival go to the earlier enqueued). So after ``t0``
    only requests that arrived before ``r`` are served ahead of it, and

        start_r <= t0 + S_max + sum of S_j over j arrived before r, started >= t0

    (the job in service at ``t0`` ends by ``t0 + S_max``, then those ``j``, then ``r``).
    Without promotion a request can be passed by later arrivals forever.
    """
    gaps = data.draw(st.lists(st.floats(0.0, 5.0), min_size=n, max_size=n))
    prompts = data.draw(st.lists(st.integers(1, 20_000), min_size=n, max_size=n))
    outputs = data.draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    jobs = _mlfq_jobs(gaps, prompts, outputs)
    params = {"quantum": 4, "levels": 8, "promote_after_s": promote}
    res = simulate(jobs, SERIAL, "mlfq", cost=COST, policy_params=params)
    start, end, arr = res.first_scheduled, res.completion, res.arrival
    svc = end - start
    assert np.all(svc > 0) and np.all(res.preemptions == 0)
    s_max = float(svc.max())
    for r in range(n):
        t0 = arr[r] + promote
        before = [(arr[j], j) < (arr[r], r) for j in range(n)]
        for j in range(n):
            if j != r and t0 + 1e-9 <= start[j] < start[r]:
                assert before[j], (r, j)
        late = sum(svc[j] for j in range(n) if before[j] and start[j] >= t0)
        assert start[r] <= t0 + s_max + late + 1e-9, r


def test_without_promotion_a_long_prompt_is_passed_by_every_later_arrival() -> None:
    # A 20,000-token prompt skip-joins a low level; a stream of short prompts keeps
    # the engine busy, so it waits until the stream ends -- unless promoted.
    jobs = [job(0, 0.0, 1, 50), job(1, 0.1, 20_000, 10)]
    jobs += [job(2 + k, 0.2 + 0.9 * k, 10, 50) for k in range(60)]  # ~1 s each, every 0.9 s
    waits = {}
    for promote in (None, 5.0):
        params = {"quantum": 4, "promote_after_s": promote}
        res = simulate(jobs, SERIAL, "mlfq", cost=COST, policy_params=params)
        waits[promote] = float(res.queueing_delay[1])
    assert waits[None] > 50.0  # after the whole stream
    assert waits[5.0] <= 5.0 + 1.1 + 1e-9  # P + the job in service (the bound above)
