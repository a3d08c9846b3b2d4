"""Magnus vs fixed-size FCFS batching at saturation, under one KV budget (`ssjf bench magnus`).

Saturation: every request is present at t=0, so throughput is the engine's
capacity (requests / makespan). Both engines reserve memory as padded batches
and pay for running out of it by the same rule (:mod:`ssjf.sim.engines.padded`).

Two fixed-size baselines, because "the same memory budget" has two honest
readings for an engine that knows no lengths:

* ``safe``: the largest batch that can never overflow, ``kv // (longest prompt
  + longest output)`` of the workload: what a length-blind engine must pick to
  avoid out-of-memory errors (Magnus's baseline). The caps are taken from the
  sample itself, which flatters the baseline (real caps, e.g. ``max_tokens``,
  are larger).
* ``best``: the batch size with the highest throughput over a grid, overflows
  and their penalty included: a baseline tuned with hindsight on the very
  workload it is measured on, the strongest fixed size there is.

Magnus is run at each margin of a grid (memory reserved beyond the
prediction); its best margin is picked the same way as the best fixed size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ssjf.job import Job
from ssjf.sim.cost import CostModel
from ssjf.sim.engines import BatchEngine, Engine, MagnusEngine
from ssjf.sim.simulate import simulate

#: Batch sizes tried for the ``best`` fixed-size baseline (the safe size is added).
BATCH_GRID = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: Margins tried for Magnus: none (the paper's rule) to twice the prediction.
MARGIN_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class Run:
    """One engine at saturation."""

    engine: str
    estimates: str  # what Magnus read ("-" for the length-blind baseline)
    throughput_rps: float
    makespan_s: float
    jct_mean_s: float
    overflow_aborts: int  # preemptions: one per unfinished member of an aborted batch


def at_zero(jobs: Sequence[Job]) -> list[Job]:
    """The same jobs, all present at t=0 (saturation)."""
    return [Job(replace(j.request, arrival=0.0), j.output_tokens) for j in jobs]


def measure(jobs: Sequence[Job], engine: Engine, cost: CostModel, estimates: str) -> Run:
    """Throughput of ``engine`` with every job present at t=0 (FCFS where a policy matters)."""
    res = simulate(at_zero(jobs), engine, "fcfs", cost=cost)
    span = float(res.completion.max())
    return Run(
        engine=engine.spec,
        estimates=estimates,
        throughput_rps=len(jobs) / span,
        makespan_s=span,
        jct_mean_s=float(res.jct.mean()),
        overflow_aborts=int(res.preemptions.sum()),
    )


def safe_batch(jobs: Sequence[Job], kv: int) -> int:
    """The largest fixed batch size that never overflows ``kv`` on these jobs (at least 1)."""
    longest_prompt = max(max(j.request.prompt_tokens, 1) for j in jobs)
    longest_output = max(j.output_tokens for j in jobs)
    return max(1, kv // (longest_prompt + longest_output))


def fixed_runs(
    jobs: Sequence[Job], kv: int, cost: CostModel, oom: str, grid: Sequence[int] = BATCH_GRID
) -> tuple[int, list[Run]]:
    """The safe size and a run of ``batch:B:kv=KV`` for each size of ``grid`` plus the safe one."""
    safe = safe_batch(jobs, kv)
    sizes = sorted(set(grid) | {safe})
    return safe, [measure(jobs, BatchEngine(b, kv_tokens=kv, oom=oom), cost, "-") for b in sizes]


def magnus_runs(
    jobs: Sequence[Job],
    kv: int,
    cost: CostModel,
    oom: str,
    estimates: str,
    margins: Sequence[float] = MARGIN_GRID,
) -> list[Run]:
    """``magnus:KV:margin=F`` for each margin; ``jobs`` carry the estimates named ``estimates``."""
    return [measure(jobs, MagnusEngine(kv, oom=oom, margin=m), cost, estimates) for m in margins]


def summarize(
    safe: int, fixed: list[Run], magnus: list[Run], kv: int, oom: str, estimates: str
) -> dict[str, Any]:
    """Ratios of Magnus's throughput to the safe and the best fixed size.

    ``magnus`` is the first run of ``magnus`` (margin 0 in the default grid: the
    paper's rule), ``best_magnus`` the best margin in hindsight.
    """
    by_spec = {r.engine: r for r in fixed}
    safe_run = by_spec[BatchEngine(safe, kv_tokens=kv, oom=oom).spec]
    best_fixed = max(fixed, key=lambda r: r.throughput_rps)
    paper = magnus[0]
    best_magnus = max(magnus, key=lambda r: r.throughput_rps)
    return {
        "kv_tokens": kv,
        "oom": oom,
        "estimates": estimates,
        "safe_batch": safe,
        "safe_rps": safe_run.throughput_rps,
        "best_fixed": best_fixed.engine,
        "best_fixed_rps": best_fixed.throughput_rps,
        "magnus": paper.engine,
        "magnus_rps": paper.throughput_rps,
        "best_magnus": best_magnus.engine,
        "best_magnus_rps": best_magnus.throughput_rps,
        "ratio_vs_safe": paper.throughput_rps / safe_run.throughput_rps,
        "ratio_vs_best": paper.throughput_rps / best_fixed.throughput_rps,
        "best_ratio_vs_safe": best_magnus.throughput_rps / safe_run.throughput_rps,
        "best_ratio_vs_best": best_magnus.throughput_rps / best_fixed.throughput_rps,
    }


def run_dicts(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Rows for JSON."""
    return [asdict(r) for r in runs]
