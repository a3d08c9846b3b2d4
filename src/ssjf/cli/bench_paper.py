"""`ssjf bench paper`: replay the SSJF paper's predictions under every engine model."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import typer

from ssjf.cli.app import bench_app

#: The paper table: what the comparison needs, narrow enough for a terminal.
PAPER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("engine", "engine", "s"),
    ("cost", "cost", "s"),
    ("load", "load", "f"),
    ("policy", "policy", "s"),
    ("jct_mean", "JCT mean s", "pm"),
    ("jct_p99", "JCT p99", "f"),
    ("jct_change_vs_fcfs", "Δ mean vs FCFS", "pct"),
    ("oracle_gain_fraction", "oracle gain", "pct"),
    ("max_wait", "max wait", "f"),
)


@bench_app.command("paper")
def bench_paper_cmd(
    json_out: Path | None = typer.Option(
        None, "--json", help="write every figure to this JSON file"
    ),
    requests: int = typer.Option(10_000, "--requests", "-n", min=1, help="requests per run"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="seeds per configuration"),
    loads: str = typer.Option("0.8,0.9,0.95", "--loads", help="utilisations, comma-separated"),
    engines: str = typer.Option(
        "serial=paper,batch:4=paper,batch:8=paper,continuous:32=affine",
        "--engines",
        help="ENGINE=COST pairs, comma-separated",
    ),
) -> None:
    """FCFS vs oracle SJF vs SSJF (paper's 5- and 3-class predictions), mean JCT change."""
    from ssjf.bench.paper import ENTRIES, run_paper
    from ssjf.bench.sweep import parse_values
    from ssjf.cli.sim_report import make_console, progress_bar, results_table, write_json
    from ssjf.workload.data import DataError

    console = make_console()
    try:
        pairs = []
        for part in engines.split(","):
            eng, sep, cost = part.strip().partition("=")
            if not sep:
                raise ValueError(f"--engines: expected ENGINE=COST, got {part!r}")
            pairs.append((eng, cost))
        load_list = parse_values(loads, "--loads")
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    total = len(pairs) * len(load_list) * seeds * len(ENTRIES)
    t0 = time.perf_counter()
    try:
        with progress_bar("bench paper", total, requests) as prog:
            rows, per_seed = run_paper(
                engines=tuple(pairs),
                loads=load_list,
                requests=requests,
                seeds=tuple(range(seeds)),
                progress=prog,
            )
    except (DataError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    wall = time.perf_counter() - t0
    console.print(
        results_table(
            rows,
            f"SSJF paper replay · LMSYS vicuna-13b predictions · {requests} requests × {seeds} seeds · Poisson",
            columns=PAPER_COLUMNS,
        )
    )
    console.print(
        "Δ vs FCFS: change in mean JCT against FCFS on the same engine, workload and seed "
        "(± std over seeds); oracle gain: (FCFS − policy) / (FCFS − oracle SJF). "
        "Paper's reference (serial engine, its own simulator): about −43% oracle, −32% SSJF 5-class."
    )
    console.print(f"wall time {wall:.1f} s")
    if json_out is not None:
        write_json(
            json_out,
            {
                "command": "ssjf " + " ".join(sys.argv[1:]),
                "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
                "wall_s": wall,
                "data": "predictions/ssjf_lmsys_vicuna13b_{5,3}class.csv",
                "rows": rows,
                "per_seed": per_seed,
            },
        )
        console.print(f"wrote {json_out}")
