"""`ssjf bench magnus`: Magnus batching vs fixed-size FCFS batching, same KV budget, saturated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import bench_app


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: give comma-separated numbers, got {text!r}") from None


@bench_app.command("magnus")
def bench_magnus(
    workload: str = typer.Option("alpaca", "-w", "--workload", help="Workload (see simulate)."),
    requests: int = typer.Option(805, "-n", "--requests", help="Requests (alpaca has 805)."),
    kv: int = typer.Option(16_384, help="KV budget in tokens (16K: a 7-8B model, 24 GB GPU)."),
    estimates: str = typer.Option(
        "noisy:0.5,noisy:0.2,noisy:0",
        help="Comma list of predictions Magnus reads: source, noisy:SIGMA (noisy:0 = truth).",
    ),
    margins: str | None = typer.Option(
        None,
        help="Magnus margins, comma-separated (the first is headlined; default 0,0.25,0.5,1,2).",
    ),
    oom: str = typer.Option("restart,keep", help="Overflow rules to run: restart, keep."),
    cost_spec: str = typer.Option("affine", "--cost", help="Cost model spec."),
    seed: int = typer.Option(0, help="Seed of the sample and of noisy estimates."),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
) -> None:
    """Throughput at saturation of magnus:KV against batch:B:kv=KV (safe B and best B)."""
    from rich.table import Table

    from ssjf.bench.magnus import MARGIN_GRID, fixed_runs, magnus_runs, run_dicts, summarize
    from ssjf.cli.sim_report import is_stdout, make_console, write_json
    from ssjf.sim.engines import MagnusEngine
    from ssjf.sim.engines.padded import OOM_RULES
    from ssjf.sim.parse import parse_cost_model
    from ssjf.workload.build import build_workload, load_pool
    from ssjf.workload.prepare import drop_unfit

    rules = [r.strip() for r in oom.split(",") if r.strip()]
    for r in rules:
        if r not in OOM_RULES:
            raise typer.BadParameter(f"--oom: {r!r} is not one of {', '.join(OOM_RULES)}")
    grid = _floats(margins, "--margins") if margins is not None else list(MARGIN_GRID)
    if not grid:
        raise typer.BadParameter("--margins: give at least one margin")
    console = make_console(stderr=is_stdout(json_out))
    cost = parse_cost_model(cost_spec)
    pool, line = drop_unfit(load_pool(workload), MagnusEngine(kv))  # same records for both
    if line:
        console.print(line)
    n = min(requests, len(pool))
    summary: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for rule in rules:
        fixed_done = False
        for est in [e.strip() for e in estimates.split(",") if e.strip()]:
            # Arrivals do not matter (moved to t=0); the rate is only required by the builder.
            w = build_workload(pool, n, seed, rate=1.0, estimates=est)
            jobs = w.jobs
            safe, fixed = fixed_runs(jobs, kv, cost, rule)
            magnus = magnus_runs(jobs, kv, cost, rule, est, grid)
            if not fixed_done:  # the length-blind baseline is the same for every estimate
                runs += run_dicts(fixed)
                fixed_done = True
            runs += run_dicts(magnus)
            summary.append(summarize(safe, fixed, magnus, kv, rule, est))
    table = Table(title=f"ssjf bench magnus: {workload}, {n} requests at t=0, KV {kv:,} tokens")
    cols = ("oom", "estimates", "safe B", "req/s", "best B", "req/s", "margin", "magnus")
    for col in (*cols, "x safe", "x best"):
        table.add_column(col, justify="right")
    for s in summary:
        for pre in ("", "best_"):
            first = not pre
            spec = s[f"{pre}magnus"]
            table.add_row(
                s["oom"] if first else "",
                s["estimates"] if first else "",
                str(s["safe_batch"]) if first else "",
                f"{s['safe_rps']:.3f}" if first else "",
                s["best_fixed"].split(":")[1] if first else "",
                f"{s['best_fixed_rps']:.3f}" if first else "",
                spec.partition("margin=")[2].partition(":")[0] or "0",
                f"{s[f'{pre}magnus_rps']:.3f}",
                f"{s[f'{pre}ratio_vs_safe']:.2f}",
                f"{s[f'{pre}ratio_vs_best']:.2f}",
            )
    console.print(table)
    console.print(
        f"magnus: req/s at margin {grid[0]:g}, then at its best margin; x safe / x best: its ratio to "
        "largest fixed batch that never overflows / the best fixed size in hindsight"
    )
    if json_out is not None:
        out = {"workload": workload, "requests": n, "cost": cost_spec, "seed": seed}
        write_json(json_out, {**out, "summary": summary, "runs": runs})
        if not is_stdout(json_out):
            console.print(f"wrote {json_out}")
