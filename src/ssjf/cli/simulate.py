"""`ssjf simulate`: compare scheduling policies on a workload with the event-driven simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ssjf.cli.app import app, lazy_help
from ssjf.cli.needs import need_records, need_saved_predictor
from ssjf.extras import require_extra
from ssjf.policies import DEFAULT_POLICY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from ssjf.bench.runner import ExperimentResult
    from ssjf.cli.sim_outputs import SimRun


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
    policies: str = typer.Option(
        f"fcfs,{DEFAULT_POLICY},ssjf,sjf", "--policies", "-p", metavar="LIST"
    ),
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
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="calibrate estimates per model from completed requests (censoring-aware, "
        "causal); per policy: ssjf:calibrate=true",
    ),
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        metavar="SPEC",
        help="calibration settings, implies --calibrate: window=512,prior=10,sigma=0.8,"
        "min_samples=30,models=64",
    ),
    preempt: str | None = typer.Option(
        None,
        "--preempt",
        metavar="SPEC",
        help="priced preemption by recompute (serial, continuous): on | off | "
        "max=1:early=0.5:price=1 (bound per request, victims only while generated <= "
        "early x predicted, gain > price x recompute)",
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
    from ssjf.bench.sweep import run_sweep, sweep_points
    from ssjf.cli.sim_report import is_stdout, make_console, progress_bar
    from ssjf.metrics import SLO
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
        from ssjf.sim.preemption import parse_preemption

        preemption = parse_preemption(preempt)
        if preemption is not None and not parse_engine(engine).preempts:
            raise ValueError(f"--preempt: engine {engine!r} cannot preempt (serial, continuous do)")
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
        from ssjf.calibration import CalibrationSettings

        cal = (
            CalibrationSettings.parse(calibration or "on")
            if calibrate or calibration is not None
            else None
        )
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
        calibrate=cal,
        preemption=preemption,
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
    from ssjf.cli.sim_outputs import OutputError, SimRun, write_outputs

    run = SimRun(
        workload=str(spec),
        entries=entries,
        points=points,
        settings=settings,
        command="ssjf " + " ".join(sys.argv[1:]),
        predictor=str(predictor) if predictor else None,
    )
    _print_table(console, run, results)
    try:
        write_outputs(
            run,
            results,
            console,
            json_out=json_out,
            records=records,
            plot=plot,
            report=report,
            explanation=READING,
        )
    except OutputError as exc:
        raise _fail(console, str(exc)) from None


def _print_table(console: Console, run: SimRun, results: Sequence[ExperimentResult]) -> None:
    """The results table (a load or rate column for a sweep), how to read it, and warnings."""
    from ssjf.bench.sweep import describe_points
    from ssjf.cli.sim_report import DEFAULT_COLUMNS, GOODPUT_COLUMNS, goodput_note, results_table

    # One point (one load): ``result`` is the run; a sweep adds a load (or rate) column.
    result = results[0]
    s, points = run.settings, run.points
    wl = result.workloads[0]
    title = (
        f"{run.workload} · {s.engine} · cost {s.cost} · {describe_points(points)}"
        + f" · {s.requests} requests × {len(s.seeds)} seeds · estimates: {wl['estimates']}"
    )
    table_columns = (*DEFAULT_COLUMNS, *(GOODPUT_COLUMNS if s.slo is not None else ()))
    if run.sweep:
        from ssjf.bench.sweep import sweep_rows

        key = points[0].key
        first = ((key, "load", "f"),) if key == "load" else ((key, "rate req/s", "f"),)
        rows = sweep_rows(points, results)
        console.print(results_table(rows, title, table_columns, extra_first=first, section_key=key))
    else:
        console.print(results_table(result.rows, title, table_columns))
    console.print(READING)
    if s.slo is not None:
        console.print(goodput_note(s.slo.jct_s, s.slo.ttft_s))
    if any(w.get("synthetic") for w in result.workloads):
        console.print(
            "[yellow]SYNTHETIC workload[/yellow]: lengths and estimates are generated, not real data."
        )
