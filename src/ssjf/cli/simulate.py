"""`ssjf simulate`: compare scheduling policies on a workload with the event-driven simulator."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ssjf.cli.app import app, lazy_help
from ssjf.cli.needs import need_records, need_saved_predictor
from ssjf.extras import require_extra

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from rich.console import Console

    from ssjf.bench.runner import ExperimentResult
    from ssjf.bench.sweep import SweepPoint


#: How to read the table (printed under it and shown on the --report page).
READING = (
    "Δ and oracle gain are against FCFS on the same engine, workload and seed; "
    "± is the std over seeds. Oracle policies (sjf, srpt) read true lengths: an upper bound."
)


def _fail(console: Console, message: str) -> typer.Exit:
    from rich.markup import escape  # messages quote extras such as 'ssjf[plot]'

    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code=2)


def _workload_help() -> str:
    from ssjf.workload.build import WORKLOAD_HELP

    return WORKLOAD_HELP


def _engine_help() -> str:
    from ssjf.sim.registry import engine_help

    return engine_help()


def _cost_help() -> str:
    from ssjf.sim.registry import cost_help

    return cost_help()


def _policies_help() -> str:
    from ssjf.policies import available_policies

    return "comma-separated, of: " + ", ".join(sorted(available_policies()))


def predictor_estimates(path: str) -> Any:
    """An estimate function that loads a saved predictor and predicts from prompt text."""
    try:
        from ssjf.predict import load_predictor
    except ImportError as exc:
        raise RuntimeError(
            f"--predictor needs the predictor toolkit (ssjf.predict): {exc}"
        ) from None
    predictor = load_predictor(path)

    def estimate(pool: Any) -> Any:
        if pool.prompts is None:
            raise ValueError(
                f"--predictor needs prompt text, and workload {pool.name!r} has none "
                "(use alpaca:..., flask:..., sharegpt or a table with a prompt column)"
            )
        return predictor.predict(pool.prompts, pool.models)

    return estimate


@app.command(
    "simulate",
    # Filled in from the registries when help is shown (they import numpy).
    cls=lazy_help(
        workload=_workload_help, engine=_engine_help, cost=_cost_help, policies=_policies_help
    ),
)
def simulate_cmd(
    workload: str = typer.Option("paper:5class", "--workload", "-w", metavar="SPEC"),
    engine: str = typer.Option("serial", "--engine", "-e", metavar="SPEC"),
    cost: str = typer.Option("paper", "--cost", metavar="SPEC"),
    policies: str = typer.Option("fcfs,ssjf,sjf,hrrn", "--policies", "-p", metavar="LIST"),
    load: str = typer.Option(
        "0.8",
        "--load",
        metavar="LOADS",
        help="utilisation of the engine's capacity; several, comma-separated, "
        "make a sweep (0.5,0.7,0.9: every policy and seed at each load)",
    ),
    rate: str | None = typer.Option(
        None,
        "--rate",
        metavar="RATES",
        help="arrival rate in req/s (overrides --load); comma-separated for a sweep",
    ),
    arrivals: str = typer.Option(
        "auto",
        "--arrivals",
        metavar="SPEC",
        help="auto (the workload's timestamps if it has them, else poisson) | poisson | gamma:CV | uniform | trace",
    ),
    requests: int = typer.Option(2000, "--requests", "-n", min=1, help="requests per run"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="number of seeds (0..N-1)"),
    seed0: int = typer.Option(0, "--seed", help="first seed"),
    shuffle: bool = typer.Option(
        False, "--shuffle", help="replay the rows in a random order (seeded), not file order"
    ),
    resample: bool = typer.Option(
        False, "--resample", help="draw requests with replacement (else each row at most once)"
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        metavar="FIELD=COL,...",
        help="for jsonl:/csv: workloads, e.g. prompt_tokens=ctx,output_tokens=gen,arrival=ts,timestamp_unit=ms",
    ),
    estimates: str = typer.Option(
        "source",
        "--estimates",
        metavar="SPEC",
        help="source (the workload's own predictions) | none | noisy:SIGMA (SYNTHETIC: truth x lognormal noise)",
    ),
    predictor: Path | None = typer.Option(
        None,
        "--predictor",
        metavar="DIR",
        help="directory of a saved predictor (ssjf train); predicts from prompts",
    ),
    starvation_max_wait: float | None = typer.Option(
        None,
        "--starvation-max-wait",
        metavar="SECONDS",
        help="starvation guard: promote requests waiting longer (s)",
    ),
    starvation_factor: float | None = typer.Option(
        None,
        "--starvation-factor",
        metavar="K",
        help="starvation guard: promote after k x predicted service time",
    ),
    slo_jct: float | None = typer.Option(
        None, "--slo-jct", metavar="SECONDS", help="goodput SLO on JCT (s); adds goodput columns"
    ),
    slo_ttft: float | None = typer.Option(
        None, "--slo-ttft", metavar="SECONDS", help="goodput SLO on TTFT (s); adds goodput columns"
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="write every figure to this JSON file ('-': standard output)"
    ),
    plot: Path | None = typer.Option(None, "--plot", help="write PNG figures into this directory"),
    report: Path | None = typer.Option(
        None, "--report", help="write one self-contained HTML page: settings, tables, figures"
    ),
    records: Path | None = typer.Option(
        None, "--records", help="per-request records (.jsonl, .csv, or .parquet with pyarrow)"
    ),
) -> None:
    """Replay a workload under several policies on one engine; print and save the figures."""
    if predictor is not None:
        need_saved_predictor(predictor, "ssjf simulate --predictor")
        require_extra("predict", "ssjf simulate --predictor")
    if plot is not None:
        require_extra("plot", "ssjf simulate --plot")
    need_records(records, "ssjf simulate")
    from ssjf.bench.runner import (
        RunSettings,
        parse_policies,
        seconds_per_token,
    )
    from ssjf.bench.sweep import describe_points, run_sweep, sweep_points
    from ssjf.cli.sim_report import (
        DEFAULT_COLUMNS,
        GOODPUT_COLUMNS,
        goodput_note,
        is_stdout,
        make_console,
        progress_bar,
        results_table,
        write_json,
    )
    from ssjf.metrics import SLO, write_records
    from ssjf.queue import StarvationGuard
    from ssjf.workload.arrivals import ArrivalSpec
    from ssjf.workload.build import WorkloadSpec, load_pool
    from ssjf.workload.data import DataError
    from ssjf.workload.prepare import prepare_pool
    from ssjf.workload.sources import parse_columns

    # With the JSON on standard output, everything else goes to standard error.
    console = make_console(stderr=is_stdout(json_out))
    try:
        points = sweep_points(load, rate)
        spec = WorkloadSpec.parse(workload)
        if columns:
            if spec.kind != "table":
                raise ValueError("--columns applies to jsonl:FILE / csv:FILE workloads")
            spec = WorkloadSpec(
                kind="table", arg=spec.arg, columns={**spec.columns, **parse_columns(columns)}
            )
        entries = parse_policies(policies)
        arrival = ArrivalSpec.parse(arrivals) if arrivals != "auto" else None
        from ssjf.sim import parse_cost_model, parse_engine

        parse_engine(engine)
        cost_model = parse_cost_model(cost)
        guard = None
        if starvation_max_wait is not None or starvation_factor is not None:
            guard = StarvationGuard(
                max_wait_s=starvation_max_wait,
                wait_factor=starvation_factor,
                seconds_per_token=seconds_per_token(cost_model),
            )
        slo = SLO(jct_s=slo_jct, ttft_s=slo_ttft)
        pool = load_pool(spec)
        if arrival is None:
            arrival = ArrivalSpec("trace" if pool.timestamps is not None else "poisson")
        # Oversized rows skipped, order checked, -n fitted: once, for every policy alike.
        prep = prepare_pool(
            pool,
            requests,
            engine=parse_engine(engine),
            file_order=arrival.kind != "trace",
            shuffle=shuffle,
            seed=seed0,
            resample=resample,
        )
        pool, requests = prep.pool, prep.requests
        est_fn = predictor_estimates(str(predictor)) if predictor is not None else None
    except (ValueError, DataError, RuntimeError, OSError) as exc:
        raise _fail(console, str(exc)) from None
    from rich.markup import escape

    for kind, lines in (("note", prep.notes), ("warning", prep.warnings)):
        for line in lines:
            console.print(f"[yellow]{kind}:[/yellow] {escape(line)}")
    if est_fn is None and estimates == "source" and pool.estimates is None:
        from ssjf.policies import policy_class

        needs = [e.policy for e in entries if policy_class(e.policy).reads_estimates]
        if needs:
            console.print(
                f"[yellow]note:[/yellow] workload {spec} carries no predictions, so "
                f"{', '.join(needs)} see no estimates (they fall back to arrival order). "
                "Use --predictor DIR, or --estimates noisy:0.5 for a SYNTHETIC stand-in."
            )
    settings = RunSettings(
        engine=engine,
        cost=cost,
        requests=requests,
        seeds=tuple(range(seed0, seed0 + seeds)),
        load=points[0].load,
        rate=points[0].rate,
        arrival=arrival,
        guard=guard,
        slo=slo if slo.enabled else None,
        estimates=estimates,
        keep_results=plot is not None or report is not None,
        records=records is not None,
        resample=resample,
    )
    runs = seeds * len(entries) * len(points)
    try:
        with progress_bar("simulating", runs, requests, quiet=is_stdout(json_out)) as prog:
            results = run_sweep(
                pool,
                entries,
                settings,
                points,
                estimate_fn=est_fn,
                progress=prog,
                labels={"workload": str(spec)},
            )
    except (ValueError, DataError, RuntimeError) as exc:
        raise _fail(console, str(exc)) from None
    # One point (one load): ``result`` is the run; a sweep adds a load (or rate) column.
    result = results[0]
    sweep = len(points) > 1
    wl = result.workloads[0]
    title = (
        f"{spec} · {engine} · cost {cost} · {describe_points(points)}"
        + f" · {requests} requests × {seeds} seeds · estimates: {wl['estimates']}"
    )
    table_columns = (*DEFAULT_COLUMNS, *(GOODPUT_COLUMNS if slo.enabled else ()))
    if sweep:
        from ssjf.bench.sweep import sweep_rows

        key = points[0].key
        first = ((key, "load", "f"),) if key == "load" else ((key, "rate req/s", "f"),)
        rows = sweep_rows(points, results)
        console.print(results_table(rows, title, table_columns, extra_first=first, section_key=key))
    else:
        console.print(results_table(result.rows, title, table_columns))
    console.print(READING)
    if slo.enabled:
        console.print(goodput_note(slo_jct, slo_ttft))
    if any(w.get("synthetic") for w in result.workloads):
        console.print(
            "[yellow]SYNTHETIC workload[/yellow]: lengths and estimates are generated, not real data."
        )
    command = "ssjf " + " ".join(sys.argv[1:])
    # The run's settings, as written to --json and shown on the --report page.
    run_settings = {
        "engine": engine,
        "cost": cost,
        "policies": [e.label for e in entries],
        # A number for one point, the list of a sweep (one "sweep" block per point).
        "load": [p.load for p in points] if sweep and rate is None else settings.load,
        "rate": [p.rate for p in points] if sweep and rate is not None else settings.rate,
        "arrivals": str(arrival),
        "requests": requests,
        "seeds": list(settings.seeds),
        "starvation_max_wait": starvation_max_wait,
        "starvation_factor": starvation_factor,
        "slo_jct": slo_jct,
        "slo_ttft": slo_ttft,
        "predictor": str(predictor) if predictor else None,
    }
    if json_out is not None:
        payload: dict[str, Any] = {
            "command": command,
            "workload": str(spec),
            "settings": run_settings,
        }
        if sweep:
            from ssjf.bench.sweep import sweep_blocks

            payload["sweep"] = sweep_blocks(points, results)
        else:
            payload.update(workloads=result.workloads, rows=result.rows, per_seed=result.per_seed)
        write_json(json_out, payload)
        if not is_stdout(json_out):
            console.print(f"wrote {json_out}")
    if records is not None:
        try:
            write_records(records, [table for res in results for table in res.records])
        except RuntimeError as exc:
            raise _fail(console, str(exc)) from None
        console.print(f"wrote {records}")
    from ssjf.plots import figure_context, oracle_labels

    oracles = oracle_labels(entries)
    # A sweep makes one context, figure set and report section per load, plus the curves.
    sections = []
    written: list[Path] = []
    for point, res in zip(points, results, strict=True):
        context = figure_context(
            str(spec),
            engine,
            cost,
            load=point.load,
            rate=point.rate,
            requests=requests,
            seeds=seeds,
        )
        prefix = f"{point.key}{point.value:g}_" if sweep else ""
        figures: list[Path] | None = None
        if plot is not None:
            from ssjf.plots import simulation_figures

            try:
                figures = simulation_figures(
                    res.jcts, res.per_seed, plot, context, oracles, prefix=prefix
                )
            except RuntimeError as exc:
                raise _fail(console, str(exc)) from None
            written.extend(figures)
        if report is not None:
            from ssjf.cli.html_report import result_section

            sections.append(
                result_section(point.describe(), res, context, oracles, figures, prefix=prefix)
            )
    curves: Path | None = None
    # What the curves' title names (the figure context without a load).
    curve_title = figure_context(str(spec), engine, cost, requests=requests, seeds=seeds)
    if sweep and plot is not None:
        curves = _sweep_curves(points, results, plot, oracles, curve_title)
        written.append(curves)
    if written:
        console.print("wrote " + ", ".join(str(f) for f in written))
    if report is not None:
        from ssjf.cli.html_report import read_figures, report_notes, write_report
        from ssjf.extras import missing_modules

        across = []  # the sweep's curves, drawn for the page alone when --plot is not given
        if curves is not None:
            across = read_figures([curves])
        elif sweep and not missing_modules("plot"):
            with tempfile.TemporaryDirectory() as tmp:
                drawn = _sweep_curves(points, results, Path(tmp), oracles, curve_title)
                across = read_figures([drawn])
        write_report(
            report,
            title=f"ssjf simulate · {spec}",
            settings={"workload": str(spec), **run_settings, "estimates": wl["estimates"]},
            sections=sections,
            command=command,
            notes=report_notes([w for res in results for w in res.workloads]),
            figures=across,
            explanation=READING,
        )
        console.print(f"wrote {report}")


def _sweep_curves(
    points: Sequence[SweepPoint],
    results: Sequence[ExperimentResult],
    folder: Path,
    oracles: Collection[str],
    title: str,
) -> Path:
    """The sweep's curve plot (mean and p99 JCT against load), ``jct_vs_load.png`` in ``folder``."""
    from ssjf.plots import load_curves

    key = points[0].key
    return load_curves(
        {p.value: res.rows for p, res in zip(points, results, strict=True)},
        title,
        folder / f"jct_vs_{key}.png",
        oracles=oracles,
        x_label="load (share of the engine's capacity)"
        if key == "load"
        else "arrival rate (req/s)",
    )
