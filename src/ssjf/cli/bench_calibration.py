"""`ssjf bench calibration`: the learning curve of self-calibration on unseen models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssjf.cli.app import bench_app
from ssjf.extras import require_extra

#: Windows shown in the table besides the first and the last (the JSON has all).
SHOWN_WINDOWS = (1, 4)


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def short_label(label: str, default: str) -> str:
    """``default`` for the default policy's spec, `` +cal`` for ``:calibrate=true``."""
    cal = label.endswith(":calibrate=true")
    base = label.removesuffix(":calibrate=true")
    return ("default" if base == default else base) + (" +cal" if cal else "")


def print_report(console: Any, doc: dict[str, Any]) -> None:
    """Per cell and policy: share of the oracle's gain and p99 / FCFS's after warm-up, a few windows."""
    from rich.table import Table

    from ssjf.metrics.compare import MIN_ORACLE_GAIN

    default = doc["default_policy"]

    for st in doc["streams"]:
        if st.get("constructed"):
            console.print(f"[yellow]{st['workload']} is CONSTRUCTED:[/yellow] {st['construction']}")
    warm = doc["config"]["warmup"]
    for cell in doc["cells"]:
        wins = cell["windows"]
        shown = sorted({0, *(k for k in SHOWN_WINDOWS if k < len(wins)), len(wins) - 1})
        table = Table(
            title=f"{cell['stream']} · {cell['engine_spec']} · cost {cell['cost']} · "
            f"load {doc['config']['load']:g} · {doc['config']['requests']} requests × "
            f"{len(doc['config']['seeds'])} seeds",
        )
        table.add_column("policy", no_wrap=True)
        table.add_column(f"share ≥{warm}", justify="right", no_wrap=True)
        table.add_column(f"p99× ≥{warm}", justify="right", no_wrap=True)
        for k in shown:
            table.add_column(f"w{k}", justify="right", no_wrap=True)
        table.add_column(f"scale w{shown[-1]}", justify="right", no_wrap=True)
        for label in cell["policies"]:
            after = cell["after_warmup"][label]
            ws = [wins[k]["policies"][label] for k in shown]
            table.add_row(
                short_label(label, default),
                _fmt(after["oracle_gain_share"], pct=True),
                _fmt(after["p99_vs_fcfs"]),
                *(
                    f"{_fmt(w['oracle_gain_share'], pct=True)} / {_fmt(w['p99_vs_fcfs'])}"
                    for w in ws
                ),
                _fmt(ws[-1]["held_out_scale"]),
            )
        console.print(table)
    console.print(
        "share = (FCFS - policy) / (FCFS - oracle SJF) of mean JCT on the same requests "
        f"(— where the oracle gains < {MIN_ORACLE_GAIN:.0%}); ≥{warm}: requests {warm} onward (0-based); "
        f"wK: share / p99× in window K of {doc['config']['window']} requests in arrival "
        f"order; p99× = p99 JCT / FCFS's; default = {default}; +cal = :calibrate=true; "
        "scale: mean calibration scale of the held-out generators' requests, last window"
    )


@bench_app.command(
    "calibration",
    help="Self-calibration over time on unseen models: share of the oracle's gain and p99 "
    "per window of requests (default ~1 min on 2 CPU cores; --quick < 20 s).",
)
def bench_calibration_cmd(
    requests: int | None = typer.Option(
        None, "--requests", "-n", min=20, help="Requests per run (default 3000)."
    ),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Seeds (default 3)."),
    engines: str | None = typer.Option(
        None,
        "--engines",
        help="Presets of `ssjf bench policies` or ENGINE=COST "
        "(default serial,continuous: continuous:32 under the affine cost).",
    ),
    window: int | None = typer.Option(
        None, "--window", min=1, help="Requests per window (default 200; also the warm-up)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Tiny preset for tests (< 20 s)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    plot: Path | None = typer.Option(None, "--plot", help="PNG: share of the oracle's gain."),
) -> None:
    """Run both streams on each engine and print the curve."""
    from dataclasses import replace

    if plot is not None:
        require_extra("plot", "ssjf bench calibration --plot")
    require_extra("predict", "ssjf bench calibration")
    from ssjf.bench.calibration_curve import CalibrationConfig, quick_config, run_curves
    from ssjf.cli.sim_report import command_line, make_console, progress_bar, write_json
    from ssjf.datadir import DataError

    console = make_console()
    try:
        cfg = quick_config() if quick else CalibrationConfig()
        overrides: dict[str, Any] = {"requests": requests, "window": window}
        if window is not None:
            overrides["warmup"] = window
        if seeds is not None:
            overrides["seeds"] = tuple(range(seeds))
        if engines is not None:
            overrides["engines"] = tuple(e.strip() for e in engines.split(",") if e.strip())
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
        with progress_bar("bench calibration", 1, cfg.requests) as prog:
            doc = run_curves(cfg, progress=prog)
    except (ValueError, DataError) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    from ssjf.bench.policies import machine
    from ssjf.bench.policies_matrix import default_policy

    doc = {
        "command": command_line(),
        "machine": machine(),
        "default_policy": default_policy(),
        "config": {
            "streams": list(cfg.streams),
            "engines": list(cfg.engines),
            "requests": cfg.requests,
            "seeds": list(cfg.seeds),
            "window": cfg.window,
            "warmup": cfg.warmup,
            "load": cfg.load,
            "arrivals": "poisson",
            "policies": list(cfg.policies),
        },
        **doc,
    }
    print_report(console, doc)
    if json_out is not None:
        write_json(json_out, doc)
        console.print(f"wrote {json_out}")
    if plot is not None:
        from ssjf.bench.calibration_plot import plot_shares

        plot_shares(doc, plot)
        console.print(f"wrote {plot}")
