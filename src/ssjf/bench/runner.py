"""Run several policies over several seeds on one engine, cost model and workload.

For each seed the workload is sampled once and every policy replays the very
same jobs on the same engine; summaries are compared with FCFS and the oracle
within the seed, then aggregated (mean, std) over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.calibration import CalibrationSettings
from ssjf.estimate import LengthEstimate
from ssjf.metrics import SLO, add_comparisons, aggregate, record_columns, summarize
from ssjf.queue import StarvationGuard
from ssjf.service import ServiceTime
from ssjf.sim.preemption import PreemptionRule
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.build import EstimateFn, build_workload, make_jobs
from ssjf.workload.sources import Pool

#: Reports progress: (completed runs, total runs, label of the run just finished).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One row of results: a policy run with one set of estimates.

    ``estimates`` names a variant of the workload's estimates (``"default"``
    = the workload's own); several entries may run the same policy on
    different predictions (e.g. the paper's 5-class and 3-class predictors).
    """

    label: str
    policy: str
    estimates: str = "default"
    #: The policy's settings (from a spec such as ``ssjf:size=service``).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Calibrate estimates from completions (``ssjf:calibrate=true``); None = as the run's
    #: settings say (``RunSettings.calibrate``).
    calibrate: bool | None = None
    #: Preemption for this entry (e.g. ``ssrpt`` with and without in one table); None =
    #: as the run's settings say (``RunSettings.preemption``).
    preemption: PreemptionRule | None = None


def parse_policies(spec: str) -> list[PolicyEntry]:
    """``fcfs,ssjf:size=service,sjf`` -> entries; each is checked by building it once."""
    from ssjf.policies import parse_policy_spec

    out: list[PolicyEntry] = []
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        name, params = parse_policy_spec(item)
        if any(e.label == item for e in out):
            continue
        calibrate = params.pop("calibrate", None)
        if calibrate is not None and not isinstance(calibrate, bool):
            raise ValueError(f"policy spec {item!r}: calibrate must be true or false")
        entry = PolicyEntry(label=item, policy=name, params=params, calibrate=calibrate)
        make_entry_policy(entry, ServiceTime(), truth=lambda r: 1.0)  # settings fail early
        out.append(entry)
    if not out:
        raise ValueError("no policies given")
    return out


def policy_params(entry: PolicyEntry, service: ServiceTime) -> dict[str, Any]:
    """The entry's settings plus the time units its policy takes, priced by ``service``."""
    from ssjf.policies import policy_class

    cls = policy_class(entry.policy)
    params = dict(entry.params)
    if cls.takes_seconds_per_token:
        params.setdefault("seconds_per_token", service.decode_s_per_token)
    if cls.takes_service:
        params.setdefault("service", service)
    return params


def make_entry_policy(entry: PolicyEntry, service: ServiceTime, truth: Any = None) -> Any:
    """Build the entry's policy (``truth`` is used only by oracle policies)."""
    from ssjf.policies import make_policy, policy_class

    oracle = policy_class(entry.policy).oracle
    return make_policy(
        entry.policy, truth=truth if oracle else None, **policy_params(entry, service)
    )


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What to run: engine, cost model, load, size, seeds and the guards around it."""

    engine: str = "serial"
    cost: str = "paper"
    requests: int = 2000
    seeds: tuple[int, ...] = (0, 1, 2)
    #: Utilisation of the engine's saturated capacity (ignored when ``rate`` is set).
    load: float | None = 0.8
    rate: float | None = None
    arrival: ArrivalSpec = field(default_factory=ArrivalSpec)
    guard: StarvationGuard | None = None
    slo: SLO | None = None
    #: "source" | "none" | "noisy:SIGMA" when no estimate function is given.
    estimates: str = "source"
    keep_results: bool = False
    records: bool = False
    #: Draw requests with replacement (a bootstrap); off, ``requests`` must not exceed the pool.
    resample: bool = False
    #: Calibrate estimates from completions (ssjf.calibration); None = off.
    calibrate: CalibrationSettings | None = None
    #: A waiting request may displace a running one (serial and continuous engines); None = never.
    preemption: PreemptionRule | None = None


@dataclass(slots=True)
class ExperimentResult:
    """Aggregated rows (one per policy entry), per-seed rows, and optional raw data."""

    rows: list[dict[str, Any]]
    per_seed: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    #: label -> per-seed JCT arrays (kept for plots when ``keep_results``).
    jcts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    records: list[dict[str, list[Any]]] = field(default_factory=list)


def entry_calibration(entry: PolicyEntry, settings: RunSettings) -> CalibrationSettings | None:
    """The calibration an entry runs with: its own switch, else the run's settings."""
    if entry.calibrate is None:
        return settings.calibrate
    return (settings.calibrate or CalibrationSettings()) if entry.calibrate else None


def seconds_per_token(cost: Any) -> float:
    """One decode step of one sequence under ``cost``: the guard's and HRRN's time unit."""
    return ServiceTime.from_cost(cost).decode_s_per_token


def run_experiment(
    pool: Pool,
    entries: Sequence[PolicyEntry],
    settings: RunSettings,
    *,
    estimate_fn: EstimateFn | None = None,
    variants: Mapping[str, Callable[[Pool], Sequence[LengthEstimate] | None]] | None = None,
    arrival_pool: Pool | None = None,
    progress: Progress | None = None,
    labels: Mapping[str, Any] | None = None,
) -> ExperimentResult:
    """Replay ``entries`` on ``settings.seeds`` samples of ``pool``; see the module doc.

    ``variants`` maps an entry's ``estimates`` name to a function giving other
    estimates for the same sampled requests (same arrivals, same truths).
    """
    from ssjf.sim import parse_cost_model, parse_engine, simulate
    from ssjf.sim.calibration import CalibrationFeedback

    engine = parse_engine(settings.engine)
    cost = parse_cost_model(settings.cost)
    service = ServiceTime.from_cost(cost)
    guard = settings.guard
    total = len(settings.seeds) * len(entries)
    done = 0
    per_seed: list[dict[str, Any]] = []
    workloads: list[dict[str, Any]] = []
    jcts: dict[str, list[np.ndarray]] = {e.label: [] for e in entries}
    records: list[dict[str, list[Any]]] = []
    base_labels = dict(labels or {})
    for seed in settings.seeds:
        wl = build_workload(
            pool,
            settings.requests,
            seed,
            engine=engine,
            cost=cost,
            load=settings.load,
            rate=settings.rate,
            arrival=settings.arrival,
            estimates=estimate_fn if estimate_fn is not None else settings.estimates,
            arrival_pool=arrival_pool,
            replace=settings.resample,
        )
        workloads.append(wl.describe)
        job_sets = {"default": wl.jobs}
        for name in {e.estimates for e in entries} - {"default"}:
            if variants is None or name not in variants:
                raise ValueError(f"no estimates variant named {name!r}")
            job_sets[name] = make_jobs(wl.pool, wl.arrivals, variants[name](wl.pool))
        summaries: dict[str, dict[str, float]] = {}
        for entry in entries:
            cal = entry_calibration(entry, settings)
            feedback = CalibrationFeedback(cal) if cal is not None else None
            res = simulate(
                job_sets[entry.estimates],
                engine,
                entry.policy,
                cost=cost,
                guard=guard,
                policy_params=policy_params(entry, service),
                feedback=feedback,
                preemption=(
                    entry.preemption if entry.preemption is not None else settings.preemption
                ),
            )
            summ = summarize(res, settings.slo)
            summ["promotions"] = float(res.promotions)
            summ["sim_wall_s"] = float(res.wall_s)
            if feedback is not None:
                # Requests whose estimate had at least one completion to learn from.
                summ["calibrated_requests"] = float(feedback.informed)
            summaries[entry.label] = summ
            row_labels = {
                **base_labels,
                "policy": entry.label,
                "engine": settings.engine,
                "seed": seed,
                "load": settings.load,
            }
            if settings.keep_results:
                jcts[entry.label].append(np.asarray(res.jct))
            if settings.records:
                records.append(record_columns(res, row_labels))
            done += 1
            if progress is not None:
                progress(done, total, f"seed {seed} {entry.label}")
        add_comparisons(summaries, baseline="fcfs", oracle="sjf")
        for entry in entries:
            per_seed.append(
                {
                    **base_labels,
                    "engine": settings.engine,
                    "cost": settings.cost,
                    "load": settings.load,
                    "policy": entry.label,
                    "seed": seed,
                    "rate_rps": wl.rate_rps,
                    **summaries[entry.label],
                }
            )
    rows: list[dict[str, Any]] = []
    for entry in entries:
        mine = [
            {k: v for k, v in r.items() if isinstance(v, float) and k not in ("load",)}
            for r in per_seed
            if r["policy"] == entry.label
        ]
        agg = aggregate(mine)
        rows.append(
            {
                **base_labels,
                "engine": settings.engine,
                "cost": settings.cost,
                "load": settings.load,
                "policy": entry.label,
                "requests": settings.requests,
                **{k: v for k, v in agg.items() if k != "requests"},
                "jct_change_vs_fcfs": agg.get("jct_mean_change_vs_fcfs", math.nan),
                "jct_change_vs_fcfs_std": agg.get("jct_mean_change_vs_fcfs_std", math.nan),
            }
        )
    return ExperimentResult(
        rows=rows, per_seed=per_seed, workloads=workloads, jcts=jcts, records=records
    )
