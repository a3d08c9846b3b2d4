"""`ssjf bench sim-speed`: a million requests through the event-skipping continuous engine.

Preemption (the default rule) is on, as the target asks: 10^6 requests within
a minute with priced preemption, identical to the step-by-step reference.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ssjf.cli.app import bench_app

if TYPE_CHECKING:
    import numpy as np

AZURE_CONV = "traces/azure_llm_2023_conv.csv"
# Means of the Azure 2023 conversation trace (prompt, output tokens) for the
# labelled synthetic fallback when the data directory is absent.
AZURE_CONV_MEANS = (1154.7, 211.1)
AZURE_CONV_SIGMA = (0.7, 1.0)  # log-space spreads chosen to resemble the trace's shape


def _azure_lengths() -> tuple[np.ndarray, np.ndarray, str] | None:
    """(prompt, output) token counts of the Azure conversation trace, if the data is here."""
    import numpy as np

    from ssjf.workload.data import find_data_file

    path = find_data_file(AZURE_CONV)  # data dir or download cache; never downloads
    if path is None:
        return None
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.int64)
    except ValueError as exc:
        raise typer.BadParameter(f"{path}: could not read token counts: {exc}") from None
    data = data.reshape(-1, 2)
    return data[:, 0], data[:, 1], f"azure conv trace ({AZURE_CONV}), resampled"


def make_workload(n: int, seed: int, rate: float | None) -> tuple[list[Any], str]:
    """``n`` jobs with Azure-conversation-like lengths, noisy estimates, Poisson arrivals.

    ``rate=None`` puts every arrival at 0 (for measuring capacity).
    """
    import numpy as np

    from ssjf.estimate import LengthEstimate
    from ssjf.request import Request
    from ssjf.sim.job import Job

    rng = np.random.default_rng(seed)
    found = _azure_lengths()
    if found is not None:
        prompts_all, outputs_all, label = found
        pick = rng.integers(0, len(prompts_all), n)
        prompts, outputs = prompts_all[pick], outputs_all[pick]
    else:
        label = "SYNTHETIC lognormal lengths with the Azure conv trace's means (no data dir)"
        cols = []
        for mean, sigma in zip(AZURE_CONV_MEANS, AZURE_CONV_SIGMA, strict=True):
            mu = np.log(mean) - sigma**2 / 2
            cols.append(np.maximum(1, np.rint(rng.lognormal(mu, sigma, n))).astype(np.int64))
        prompts, outputs = cols
    outputs = np.maximum(outputs, 1)
    # A stand-in predictor: the true length times a lognormal error (Kendall tau ~0.6).
    estimates = outputs * np.exp(rng.normal(0.0, 0.6, n))
    arrivals = np.zeros(n) if rate is None else np.cumsum(rng.exponential(1.0 / rate, n))
    jobs = [
        Job(Request(i, a, p, estimate=LengthEstimate(e)), o)
        for i, (a, p, o, e) in enumerate(
            zip(
                arrivals.tolist(),
                prompts.tolist(),
                outputs.tolist(),
                estimates.tolist(),
                strict=True,
            )
        )
    ]
    return jobs, label


@bench_app.command("sim-speed")
def sim_speed(
    requests: int = typer.Option(1_000_000, help="Requests through the event-skipping engine."),
    reference_requests: int = typer.Option(
        10_000, help="Requests also run through the step-by-step reference (0: skip)."
    ),
    load: float = typer.Option(0.9, help="Arrival rate as a fraction of measured capacity."),
    max_num_seqs: int = typer.Option(32, help="Running sequences in the continuous engine."),
    cost_spec: str = typer.Option("affine", "--cost", help="Cost model spec (see docs)."),
    policy: str = typer.Option("ssjf", help="Scheduling policy."),
    preempt: str = typer.Option(
        "on",
        "--preempt",
        metavar="SPEC",
        help="Preemption rule: on | off | max=1:early=0.5:price=1 (see ssjf simulate).",
    ),
    seed: int = typer.Option(0, help="Random seed of the workload."),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
) -> None:
    """Time the continuous engine on a million requests and check it against the reference."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from ssjf.sim import ContinuousEngine, StepContinuousEngine, capacity_rps, simulate
    from ssjf.sim.parse import parse_cost_model
    from ssjf.sim.preemption import parse_preemption

    console = Console()
    cost = parse_cost_model(cost_spec)
    try:
        rule = parse_preemption(preempt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--preempt") from None
    engine = ContinuousEngine(max_num_seqs=max_num_seqs)
    cap_jobs, label = make_workload(min(20_000, max(requests, 1000)), seed + 1, None)
    capacity = capacity_rps(engine, cost, cap_jobs)
    rate = load * capacity
    console.print(f"workload: {label}; capacity {capacity:.2f} req/s, rate {rate:.2f} req/s")

    row: dict[str, Any] = {
        "requests": requests,
        "policy": policy,
        "preemption": rule.spec if rule is not None else "off",
        "engine": engine.spec,
        "cost": cost_spec,
        "load": load,
        "capacity_rps": capacity,
        "arrival_rate_rps": rate,
        "workload": label,
    }
    if reference_requests > 0:
        # Three checks: the engine as benchmarked (ample cache); a cache of 1,200 blocks
        # (~19K tokens) that forces memory evictions; and 4 slots at the same load of
        # their own capacity, where the preemption rule pays (a batch of 32 rarely
        # lets it: slots free up too often for a recompute to be worth it).
        ref_jobs, _ = make_workload(reference_requests, seed + 2, rate)
        diffs: list[float] = []
        pressured = ContinuousEngine(max_num_seqs=max_num_seqs, num_kv_blocks=1200)
        few = ContinuousEngine(max_num_seqs=4)
        few_n = min(reference_requests, 2000)
        few_rate = load * capacity_rps(few, cost, cap_jobs[:2000])
        checks = (
            ("", engine, ref_jobs),
            ("pressured_", pressured, ref_jobs),
            ("few_slots_", few, make_workload(few_n, seed + 3, few_rate)[0]),
        )
        for name, eng, check_jobs in checks:
            fast = simulate(check_jobs, eng, policy, cost=cost, preemption=rule)
            ref_engine = StepContinuousEngine(
                eng.max_num_seqs, eng.max_num_batched_tokens, eng.block_size, eng.num_kv_blocks
            )
            ref = simulate(check_jobs, ref_engine, policy, cost=cost, preemption=rule)
            diff = max(
                float(np.max(np.abs(getattr(fast, f) - getattr(ref, f)) / np.abs(getattr(ref, f))))
                for f in ("completion", "first_token")
            )
            diffs.append(diff)
            row[f"{name}reference_max_rel_diff"] = diff
            row[f"{name}reference_wall_s"] = ref.wall_s
            row[f"{name}fast_wall_s_on_reference_set"] = fast.wall_s
            row[f"{name}reference_preemptions"] = int(ref.preemptions.sum())
            row[f"{name}preemptions_equal"] = bool(
                np.array_equal(fast.preemptions, ref.preemptions)
                and np.array_equal(fast.recomputed_tokens, ref.recomputed_tokens)
            )
        row["reference_requests"] = reference_requests
        row["max_rel_diff_vs_reference"] = max(diffs)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    jobs, _ = make_workload(requests, seed, rate)
    build_s = time.perf_counter() - t0
    res = simulate(jobs, engine, policy, cost=cost, preemption=rule)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    row.update(
        wall_s=wall,
        cpu_s=cpu,  # differs from wall_s when other processes share the cores
        workload_build_s=build_s,
        simulate_s=res.wall_s,
        peak_rss_mb=peak_mb,
        jct_mean_s=float(res.jct.mean()),
        preemptions=int(res.preemptions.sum()),
        recomputed_tokens=int(res.recomputed_tokens.sum()),
        simulated_s=res.makespan,
    )
    table = Table(title="ssjf bench sim-speed")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in row.items():
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    console.print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(row, indent=2) + "\n")
        console.print(f"wrote {json_out}")
