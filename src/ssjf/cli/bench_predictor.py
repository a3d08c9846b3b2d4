"""`ssjf bench predictor`: train every predictor family on a fixed split and report figures."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ssjf.cli.app import bench_app
from ssjf.cli.needs import need_families
from ssjf.extras import require_extra


def _fmt(value: object, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


@bench_app.command("predictor")
def bench_predictor_cmd(
    families: str | None = typer.Option(
        None,
        "--families",
        help="Comma-separated families, or 'all' (default: every registered family but "
        "the optional fine-tuned formulations; see docs/predictors.md).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write rows and details here."),
    seed: int | None = typer.Option(
        None, "--seed", help="Split seed (default: the documented one)."
    ),
    e2e: bool = typer.Option(True, "--e2e/--no-e2e", help="Run the end-to-end SSJF check."),
    e2e_family: str | None = typer.Option(
        None, "--e2e-family", help="Family for the end-to-end check (default: best alpaca tau)."
    ),
    e2e_requests: int = typer.Option(2000, "--e2e-requests", min=100),
    e2e_seeds: int = typer.Option(8, "--e2e-seeds", min=1),
    latency_single: int = typer.Option(200, "--latency-calls", min=10),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="Save the best predictor and the held-out sets (JSONL) here, to replay with "
        "`ssjf simulate -w jsonl:DIR/alpaca_eval_heldout.jsonl --predictor DIR/predictor-FAMILY`.",
    ),
    splits: str | None = typer.Option(
        None,
        "--splits",
        help="Generalization splits instead of the fixed split: in-dist, unseen-models, "
        "cross-collection (comma-separated), or all; see docs/predictors.md.",
    ),
    recipe: str | None = typer.Option(
        None, "--recipe", help="Training data of --splits: legacy or diverse (default diverse)."
    ),
    online: bool = typer.Option(
        False,
        "--online",
        help="Instead: replay a stream dominated by generators absent from training and show "
        "the learning curve of the shipped predictor alone, calibrated, and retrained "
        "(--families picks the shipped family, default tfidf; see docs/predictors.md).",
    ),
    online_requests: int | None = typer.Option(
        None, "--online-requests", min=20, help="--online: requests per seed (default 3000)."
    ),
    online_seeds: int | None = typer.Option(
        None, "--online-seeds", min=1, help="--online: seeds (default 3)."
    ),
    online_window: int | None = typer.Option(
        None, "--online-window", min=1, help="--online: requests per window (default 200)."
    ),
    retrain: str | None = typer.Option(
        None,
        "--retrain",
        metavar="SPEC",
        help="--online: retrain settings, e.g. every=500:min_records=200:holdout=200 "
        "(default: RetrainSettings' defaults, every=500 after the first at 200).",
    ),
    online_plot: Path | None = typer.Option(
        None, "--online-plot", help="--online: PNG of tau and share per window."
    ),
) -> None:
    """Tau per generator, MAE, CPU latency and throughput for each family on held-out prompts."""
    # One core for the latency figures: BLAS/OpenMP pools read these at import time.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from ssjf.bench.predictor import BenchConfig, default_families, run_bench
    from ssjf.predict.data import DataError
    from ssjf.predict.split import DEFAULT_SEED

    err = Console(stderr=True, soft_wrap=True)
    if recipe is not None and splits is None:
        raise typer.BadParameter("--recipe applies to --splits only", param_hint="--recipe")
    online_only = {"--online-requests": online_requests, "--online-seeds": online_seeds,
                   "--online-window": online_window, "--retrain": retrain,
                   "--online-plot": online_plot}  # fmt: skip
    stray = [k for k, v in online_only.items() if v is not None]
    if stray and not online:
        raise typer.BadParameter(f"{stray[0]} applies to --online only", param_hint=stray[0])
    if online:  # the online replay (ssjf.bench.online_replay)
        from ssjf.cli.bench_online import run_online_cli

        fams = [f.strip() for f in (families or "tfidf").split(",") if f.strip()]
        if len(fams) != 1 or fams[0] == "all":
            raise typer.BadParameter("--online replays one family", param_hint="--families")
        need_families(fams, "ssjf bench predictor --online")
        require_extra("predict", "ssjf bench predictor --online")
        if online_plot is not None:
            require_extra("plot", "ssjf bench predictor --online-plot")
        run_online_cli(family=fams[0], requests=online_requests, seeds=online_seeds,
                       window=online_window, retrain=retrain, json_out=json_out,
                       plot=online_plot)  # fmt: skip
        return
    names = tuple(f.strip() for f in families.split(",") if f.strip()) if families else None
    run = default_families(include_all=names == ("all",)) if names in (None, ("all",)) else names
    need_families(run, "ssjf bench predictor")
    require_extra("predict", "ssjf bench predictor")
    if splits is not None:  # the generalization splits (ssjf.bench.predictor_splits)
        from ssjf.cli.bench_generalization import run_splits

        s = DEFAULT_SEED if seed is None else seed
        run_splits(splits, recipe, names, seed=s, latency=latency_single, json_out=json_out)
        return
    cfg = BenchConfig(
        families=names,
        seed=DEFAULT_SEED if seed is None else seed,
        e2e=e2e,
        e2e_family=e2e_family,
        e2e_requests=e2e_requests,
        e2e_seeds=e2e_seeds,
        latency_single=latency_single,
        export_dir=str(export) if export else None,
    )
    try:
        result = run_bench(cfg, report=err.print)
    except DataError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"ssjf bench predictor ({result['meta']['split']})")
    for col in ("family", "dataset", "tau mean", "spearman", "MAE (tok)", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col in ("family", "dataset") else "right")
    table.add_column("prompts/s", justify="right")
    table.add_column("cov 80%", justify="right")
    for r in result["rows"]:
        table.add_row(
            r["family"],
            r["dataset"],
            _fmt(r["tau_mean"], ".3f"),
            _fmt(r.get("spearman_mean"), ".3f"),
            _fmt(r["mae"], ".1f"),
            _fmt(r["latency_p50_ms"], ".2f"),
            _fmt(r.get("latency_p99_ms"), ".2f"),
            _fmt(r["prompts_per_s"], ",.0f"),
            _fmt(r.get("coverage_80"), ".0%"),
        )
    # Wide enough for every column when the output is a file or a pipe.
    out = Console(width=None if Console().is_terminal else 160)
    out.print(table)
    if "e2e" in result:
        e = result["e2e"]
        if "skipped" in e:
            out.print(f"end to end: skipped ({e['skipped']})")
        else:
            out.print(
                f"end to end: SSJF on [b]{e['family']}[/b] captures "
                f"[b]{_fmt(e['oracle_gain_fraction'], '.1%')}[/b] "
                f"(± {_fmt(e['oracle_gain_fraction_std'], '.1%')}) "
                f"of oracle SJF's mean-JCT gain over FCFS ({e['engine']} engine, load {e['load']}, "
                f"{e['requests']} held-out alpaca_eval requests x {len(e['seeds'])} seeds)"
            )
    for fam, why in result["failures"].items():
        out.print(f"[red]{fam} failed:[/red] {why}")
    out.print(
        f"wall time {result['meta']['wall_s']:.0f} s; token unit {result['meta']['token_unit']}"
    )
    if json_out is not None:
        from ssjf.predict.base import _jsonable

        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
