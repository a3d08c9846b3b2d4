"""Saturated throughput of an engine on a workload, to turn a load into an arrival rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ssjf.sim.cost import CostModel
from ssjf.sim.engines.base import Engine
from ssjf.sim.job import Job


def capacity_rps(engine: Engine, cost: CostModel, jobs: Sequence[Job]) -> float:
    """Requests per second when every job is present at t=0 and served FCFS.

    Throughput under saturation (jobs / makespan). Arrival rate for a target
    utilisation ``rho`` is then ``rho * capacity_rps(...)``. The drain at the
    end (a partly filled batch) makes this a slight underestimate for small
    job sets; use a few thousand jobs.
    """
    from ssjf.sim.simulate import simulate

    if not jobs:
        raise ValueError("capacity_rps needs at least one job")
    at_zero = [
        Job(
            replace(j.request, arrival=0.0, enqueued_at=-1.0, generated=0, preemptions=0),
            j.output_tokens,
        )
        for j in jobs
    ]
    res = simulate(at_zero, engine, "fcfs", cost=cost)
    span = float(res.completion.max())
    if span <= 0:
        raise ValueError("capacity_rps: the jobs take no time under this cost model")
    return len(jobs) / span
