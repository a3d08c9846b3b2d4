"""`ssjf bench policies`: every policy on every engine, workload, load and arrival process.

A cell is (workload, engine, load, arrivals). For each seed the cell's requests
are sampled once and every policy replays the very same jobs on the same
engine (:func:`ssjf.bench.runner.run_experiment`). The workloads' predictors
never saw what they serve (:mod:`ssjf.bench.policies_workloads`); the matrix
is data (:mod:`ssjf.bench.policies_matrix`); the trade-off curves and the
judged figures are in :mod:`ssjf.bench.policies_curves`.

Row figures are means over seeds. ``oracle_gain_fraction`` compares the
seed-mean JCTs, (FCFS - policy) / (FCFS - oracle), and is null when the oracle
gains less than :data:`ssjf.metrics.compare.MIN_ORACLE_GAIN` of FCFS (a ratio
of noise); the oracle is non-preemptive ``sjf``, or ``srpt`` with the same
preemption rule for a preemptive row. ``goodput`` counts, per second, the
requests that finish within ``slo_factor`` x the mean time a request of the
workload takes alone on the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.bench.policies_curves import (
    GUARD_FACTORS,
    TAIL_GRID,
    curve_runs,
    guard_points,
    judge,
    run_curves,
    tail_points,
)
from ssjf.bench.policies_matrix import (
    ENGINE_PRESETS,
    POLICIES,
    QUICK_POLICIES,
    BenchPolicy,
    EnginePreset,
    default_policy,
    engine_preset,
    matrix_policies,
)
from ssjf.bench.policies_rows import ROW_FIELDS, cell_rows
from ssjf.bench.policies_workloads import WORKLOADS, BenchWorkload, WorkloadConfig, build_workloads
from ssjf.bench.runner import RunSettings, run_experiment
from ssjf.metrics import SLO
from ssjf.plots._common import oracle_labels
from ssjf.workload.arrivals import ArrivalSpec

LOADS: tuple[float, ...] = (0.7, 0.9, 1.1)
#: ``bursty``: the workload's own trace timestamps where it has them, else gamma:CV.
ARRIVALS: tuple[str, ...] = ("poisson", "bursty")
#: Reports progress: (runs done, runs in all, label of the run just finished).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class PoliciesConfig:
    """The matrix to run; defaults are the documented benchmark (see docs/results.md)."""

    workloads: tuple[str, ...] = WORKLOADS
    engines: tuple[str, ...] = tuple(ENGINE_PRESETS)
    loads: tuple[float, ...] = LOADS
    arrivals: tuple[str, ...] = ARRIVALS
    policies: tuple[str, ...] = POLICIES
    # Sized so the full matrix takes ~30 min on 2 busy CPU cores (docs/results.md): a
    # p99 from 20 requests per seed, 4 seeds; the KV-bounded engine at overload with
    # bursty arrivals dominates (time-dependent keys cost O(queue) per pop).
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    requests: int = 2000
    curves: bool = True
    curve_load: float = 0.9  # the judged load
    tail_grid: tuple[float | None, ...] = TAIL_GRID
    guard_factors: tuple[float | None, ...] = GUARD_FACTORS
    guard_policies: tuple[str, ...] = ("ssjf",)  # the "simple max-wait guard on SSJF"
    slo_factor: float = 5.0
    training: WorkloadConfig = field(default_factory=WorkloadConfig)
    keep_jcts: bool = False  # per-request JCTs for the CCDF plots (memory: cells x runs x n)


def quick_config() -> PoliciesConfig:
    """--quick: every workload, tiny everything else (tests and CI)."""
    return PoliciesConfig(
        engines=("serial", "continuous-kv"),
        loads=(0.9,),
        arrivals=("poisson",),
        policies=QUICK_POLICIES,
        seeds=(0, 1),
        requests=200,
        tail_grid=(1.0, 1.1, 2.0, None),
        guard_factors=(1.0, None),
        training=WorkloadConfig(max_train=1000),
    )


@dataclass(slots=True)
class CellResult:
    """One cell's rows, plus the runner's per-seed rows and JCTs for the plots."""

    key: dict[str, Any]
    rows: list[dict[str, Any]]
    per_seed: list[dict[str, Any]]
    runner_per_seed: list[dict[str, Any]]
    jcts: dict[str, list[np.ndarray]]
    oracles: frozenset[str]


@dataclass(slots=True)
class PoliciesResult:
    """Everything the command prints, writes and plots."""

    cells: list[CellResult] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    curve_cells: list[dict[str, Any]] = field(default_factory=list)
    judged: list[dict[str, Any]] = field(default_factory=list)
    workloads: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    policies: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for c in self.cells for r in c.rows]

    @property
    def per_seed(self) -> list[dict[str, Any]]:
        return [r for c in self.cells for r in c.per_seed]


def resolve_arrival(name: str, wl: BenchWorkload) -> ArrivalSpec:
    """``poisson`` | ``bursty`` (the workload's) | any arrival spec (``gamma:2``, ``trace``)."""
    if name == "bursty":
        return wl.bursty
    return ArrivalSpec.parse(name)


def slo_for(preset: EnginePreset, wl: BenchWorkload, factor: float) -> SLO:
    """JCT objective: ``factor`` x the mean time a served request takes alone on the engine."""
    from ssjf.sim import parse_cost_model

    cost = parse_cost_model(preset.cost)
    p, o = wl.pool.prompt_tokens.tolist(), wl.pool.output_tokens.tolist()
    alone = np.mean([cost.serial_job_time(max(a, 1), b) for a, b in zip(p, o, strict=True)])
    return SLO(jct_s=factor * float(alone))


def cell_policies(policies: Sequence[BenchPolicy], preset: EnginePreset) -> list[BenchPolicy]:
    """The policies an engine runs: preemptive ones only where the engine can preempt."""
    from ssjf.sim import parse_engine

    preempts = bool(getattr(parse_engine(preset.engine), "preempts", False))
    return [p for p in policies if preempts or p.preemption is None]


class _Counter:
    """Global progress over every run of the bench."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def tick(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label)


def _curve_bases(
    cfg: PoliciesConfig, policies: Sequence[BenchPolicy]
) -> tuple[list[BenchPolicy], list[BenchPolicy]]:
    """(policies whose tail is swept: the default and any written with tail=, guard policies)."""
    default = BenchPolicy.parse(default_policy()).with_params(tail=None)
    tails = [default]
    for bp in policies:
        base = bp.with_params(tail=None)
        if "tail" in bp.params and all(b.text != base.text for b in tails):
            tails.append(base)
    guards = [BenchPolicy.parse(g) for g in cfg.guard_policies]
    return tails, guards


def run_bench(cfg: PoliciesConfig, progress: Progress | None = None) -> PoliciesResult:
    """Run the matrix (and the curves) of ``cfg``; see the module doc."""
    t_start = time.perf_counter()
    policies = matrix_policies(cfg.policies)
    presets = [engine_preset(e) for e in cfg.engines]
    arrivals = list(cfg.arrivals)
    for a in arrivals:
        if a != "bursty":
            ArrivalSpec.parse(a)  # bad specs fail before any training
    tail_bases, guard_bases = _curve_bases(cfg, policies)
    t0 = time.perf_counter()
    workloads = build_workloads(cfg.workloads, cfg.training)
    train_s = time.perf_counter() - t0
    per_engine = {p.name: cell_policies(policies, p) for p in presets}
    n_seeds = len(cfg.seeds)
    cells = len(workloads) * len(cfg.loads) * len(arrivals)
    total = sum(cells * n_seeds * len(per_engine[p.name]) for p in presets)
    if cfg.curves:
        tails = tail_points(tail_bases, cfg.tail_grid)
        guards = guard_points(guard_bases, cfg.guard_factors)
        total += len(workloads) * len(presets) * n_seeds * curve_runs(tails, guards)
    counter = _Counter(total, progress)
    out = PoliciesResult(workloads=[w.describe for w in workloads])
    out.policies = [p.text for p in policies]
    cell_times: list[dict[str, Any]] = []
    for wl in workloads:
        for preset in presets:
            slo = slo_for(preset, wl, cfg.slo_factor)
            mine = per_engine[preset.name]
            for arrival_name in arrivals:
                arrival = resolve_arrival(arrival_name, wl)
                for load in cfg.loads:
                    key = {
                        "engine": preset.name,
                        "workload": wl.name,
                        "load": load,
                        "arrivals": str(arrival),
                    }
                    t_cell = time.perf_counter()
                    settings = _settings(cfg, preset, wl, load, arrival, slo)
                    entries = [p.entry() for p in mine]
                    res = run_experiment(
                        wl.pool,
                        entries,
                        settings,
                        progress=lambda _d, _t, label: counter.tick(label),
                    )
                    rows, seed_rows = cell_rows(key, mine, res.per_seed)
                    oracles = oracle_labels(entries)
                    out.cells.append(
                        CellResult(key, rows, seed_rows, res.per_seed, res.jcts, oracles)
                    )
                    cell_times.append({**key, "wall_s": time.perf_counter() - t_cell})
            if cfg.curves:
                t_curve = time.perf_counter()
                poisson = ArrivalSpec("poisson")
                settings = _settings(cfg, preset, wl, cfg.curve_load, poisson, None)
                rows_c, cell = run_curves(
                    wl,
                    preset,
                    settings,
                    cell_policies(tail_bases, preset),
                    cell_policies(guard_bases, preset),
                    cfg.tail_grid,
                    cfg.guard_factors,
                    counter.tick,
                )
                out.curves.extend(rows_c)
                out.curve_cells.append(cell)
                guard = guard_bases[0].text if guard_bases else None
                out.judged.append(judge(cell, rows_c, tail_bases[0].text, guard))
                cell["wall_s"] = time.perf_counter() - t_curve
    out.timing = {
        "total_wall_s": time.perf_counter() - t_start,
        "train_wall_s": train_s,
        "cells": cell_times,
        "cell_wall_s_mean": float(np.mean([c["wall_s"] for c in cell_times])) if cell_times else 0,
    }
    return out


def _settings(
    cfg: PoliciesConfig,
    preset: EnginePreset,
    wl: BenchWorkload,
    load: float,
    arrival: ArrivalSpec,
    slo: SLO | None,
) -> RunSettings:
    # A trace is replayed as a contiguous window, so it cannot be resampled; prompt pools
    # smaller than the run (one generator's 202 held-out prompts) are, with replacement.
    resample = cfg.requests > len(wl.pool) and arrival.kind != "trace"
    return RunSettings(
        engine=preset.engine,
        cost=preset.cost,
        requests=cfg.requests,
        seeds=cfg.seeds,
        load=load,
        arrival=arrival,
        slo=slo,
        keep_results=cfg.keep_jcts,
        resample=resample,
    )


def machine() -> dict[str, Any]:
    """Facts about the machine that ran the bench (timings depend on them)."""
    import os
    import platform

    from ssjf.cli.app import version

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "ssjf": version(),
    }


def payload(cfg: PoliciesConfig, res: PoliciesResult, command: str) -> dict[str, Any]:
    """The JSON document of a run (``--json``): see docs/results.md for every key."""
    return {
        "command": command,
        "default_policy": default_policy(),
        "machine": machine(),
        "seeds": list(cfg.seeds),
        "requests": cfg.requests,
        "loads": list(cfg.loads),
        "arrivals": list(cfg.arrivals),
        "engines": [vars_of(engine_preset(e)) for e in cfg.engines],
        "policies": res.policies,
        "slo_factor": cfg.slo_factor,
        "row_fields": list(ROW_FIELDS),
        "workloads": res.workloads,
        "rows": res.rows,
        "per_seed": res.per_seed,
        "curves": res.curves,
        "curve_cells": res.curve_cells,
        "judged": res.judged,
        "timing": res.timing,
    }


def vars_of(preset: EnginePreset) -> dict[str, str]:
    """An engine preset as a JSON object."""
    return {"name": preset.name, "engine": preset.engine, "cost": preset.cost, "note": preset.note}
