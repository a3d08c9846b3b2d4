"""`ssjf bench policies`: every policy x engine x workload x load x arrivals, and the trade-off curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import bench_app
from ssjf.extras import require_extra

#: Measured on 2 busy CPU cores (docs/results.md): one seed of the whole default matrix
#: (96 cells x 19 policies x 2,000 requests, plus 16 curve cells) takes ~7 min, most of
#: it the KV-bounded engine at overload with bursty arrivals; training ~1 min.
TIME_NOTE = "the default matrix (4 seeds) takes about 30 min on 2 CPU cores; --quick ~20 s"


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(p.strip() for p in text.split(",") if p.strip())
    if not items:
        raise typer.BadParameter("give at least one value")
    return items


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    from ssjf.bench.sweep import parse_values

    if text is None:
        return None
    try:
        return parse_values(text, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@bench_app.command("policies", help=f"Every policy on every engine and workload; {TIME_NOTE}.")
def bench_policies_cmd(
    workloads: str | None = typer.Option(
        None,
        "--workloads",
        help="in-dist, cross-dataset, unseen-models, long-prompts (default: all).",
    ),
    engines: str | None = typer.Option(
        None,
        "--engines",
        help="Presets serial, batch, continuous, continuous-kv (default: all), or ENGINE=COST.",
    ),
    loads: str | None = typer.Option(None, "--loads", help="Loads (default 0.7,0.9,1.1)."),
    arrivals: str | None = typer.Option(
        None,
        "--arrivals",
        help="poisson, bursty (the trace's own timestamps, else gamma:3), or any arrival "
        "spec such as gamma:2 (default poisson,bursty).",
    ),
    policies: str | None = typer.Option(
        None,
        "--policies",
        help="Policy specs, comma-separated; SPEC@FIELD=VALUE sets a run field, e.g. "
        "ssrpt@preemption=on (default: the documented list; fcfs, sjf and the default "
        "policy are always added).",
    ),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Seeds per cell (default 4)."),
    requests: int | None = typer.Option(
        None, "--requests", "-n", min=10, help="Requests per run (default 2000)."
    ),
    curves: bool = typer.Option(True, "--curves/--no-curves", help="Trade-off curves at load 0.9."),
    quick: bool = typer.Option(
        False, "--quick", help="Tiny preset for tests and CI (< 30 s); options above override it."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    plot: Path | None = typer.Option(None, "--plot", help="Write PNG figures into this directory."),
) -> None:
    """Run the matrix, print the rows and the judged figures."""
    from dataclasses import replace

    if plot is not None:
        require_extra("plot", "ssjf bench policies --plot")
    require_extra("predict", "ssjf bench policies")
    from ssjf.bench.policies import PoliciesConfig, payload, quick_config, run_bench
    from ssjf.cli.sim_report import command_line, make_console, progress_bar, write_json
    from ssjf.datadir import DataError

    cfg = quick_config() if quick else PoliciesConfig()
    overrides: dict[str, Any] = {
        "workloads": _split(workloads),
        "engines": _split(engines),
        "loads": _floats(loads, "--loads"),
        "arrivals": _split(arrivals),
        "policies": _split(policies),
        "seeds": tuple(range(seeds)) if seeds is not None else None,
        "requests": requests,
    }
    cfg = replace(
        cfg,
        **{k: v for k, v in overrides.items() if v is not None},
        curves=curves,
        keep_jcts=plot is not None,
    )
    console = make_console()
    try:
        with progress_bar("bench policies", 1, cfg.requests) as prog:
            res = run_bench(cfg, progress=prog)
    except (ValueError, DataError) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    from ssjf.cli.bench_policies_report import print_report

    print_report(console, cfg, res)
    command = command_line()
    if json_out is not None:
        write_json(json_out, payload(cfg, res, command))
        console.print(f"wrote {json_out}")
    if plot is not None:
        from ssjf.bench.policies_plots import write_figures

        files = write_figures(res, plot, cfg)
        console.print(f"wrote {len(files)} figures to {plot}")
