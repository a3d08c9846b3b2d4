"""`ssjf simulate`: compare scheduling policies on a workload with the event-driven simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ssjf.cli.app import app, lazy_help

if TYPE_CHECKING:
    from rich.console import Console


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
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
    workload: str = typer.Option("paper:5class", "--workload", "-w"),
    engine: str = typer.Option("serial", "--engine", "-e"),
    cost: str = typer.Option("paper", "--cost"),
    policies: str = typer.Option("fcfs,ssjf,sjf,hrrn", "--policies", "-p"),
    load: float = typer.Option(0.8, "--load", help="utilisation of the engine's capacity"),
    rate: float | None = typer.Option(
        None, "--rate", help="arrival rate in req/s (overrides --load)"
    ),
    arrivals: str = typer.Option(
        "auto",
        "--arrivals",
        help="auto (the workload's timestamps if it has them, else poisson) | poisson | gamma:CV | uniform | trace",
    ),
    requests: int = typer.Option(2000, "--requests", "-n", min=1, help="requests per run"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="number of seeds (0..N-1)"),
    seed0: int = typer.Option(0, "--seed", help="first seed"),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="for jsonl:/csv: workloads, e.g. prompt_tokens=ctx,output_tokens=gen,arrival=ts",
    ),
    estimates: str = typer.Option(
        "source",
        "--estimates",
        help="source (the workload's own predictions) | none | noisy:SIGMA (SYNTHETIC: truth x lognormal noise)",
    ),
    predictor: Path | None = typer.Option(
        None,
        "--predictor",
        help="directory of a saved predictor (ssjf train); predicts from prompts",
    ),
    starvation_max_wait: float | None = typer.Option(
        None, "--starvation-max-wait", help="starvation guard: promote requests waiting longer (s)"
    ),
    starvation_factor: float | None = typer.Option(
        None,
        "--starvation-factor",
        help="starvation guard: promote after k x predicted service time",
    ),
    slo_jct: float | None = typer.Option(None, "--slo-jct", help="goodput SLO on JCT (s)"),
    slo_ttft: float | None = typer.Option(None, "--slo-ttft", help="goodput SLO on TTFT (s)"),
    json_out: Path | None = typer.Option(
        None, "--json", help="write every figure to this JSON file"
    ),
    plot: Path | None = typer.Option(None, "--plot", help="write PNG figures into this directory"),
    records: Path | None = typer.Option(
        None, "--records", help="per-request records (.jsonl, .csv, or .parquet with pyarrow)"
    ),
) -> None:
    """Replay a workload under several policies on one engine; print and save the figures."""
    from ssjf.bench.runner import (
        RunSettings,
        parse_policies,
        run_experiment,
        seconds_per_token,
    )
    from ssjf.cli.sim_report import make_console, progress_bar, results_table, write_json
    from ssjf.metrics import SLO, write_records
    from ssjf.queue import StarvationGuard
    from ssjf.workload.arrivals import ArrivalSpec
    from ssjf.workload.build import WorkloadSpec, load_pool
    from ssjf.workload.data import DataError
    from ssjf.workload.sources import parse_columns

    console = make_console()
    try:
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
        est_fn = predictor_estimates(str(predictor)) if predictor is not None else None
    except (ValueError, DataError, RuntimeError, OSError) as exc:
        raise _fail(console, str(exc)) from None
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
        load=None if rate is not None else load,
        rate=rate,
        arrival=arrival,
        guard=guard,
        slo=slo if slo.enabled else None,
        estimates=estimates,
        keep_results=plot is not None,
        records=records is not None,
    )
    try:
        with progress_bar(console, "simulating", seeds * len(entries)) as prog:
            result = run_experiment(
                pool,
                entries,
                settings,
                estimate_fn=est_fn,
                progress=prog,
                labels={"workload": str(spec)},
            )
    except (ValueError, DataError, RuntimeError) as exc:
        raise _fail(console, str(exc)) from None
    wl = result.workloads[0]
    title = (
        f"{spec} · {engine} · cost {cost} · "
        + (f"load {load:g}" if rate is None else f"rate {rate:g} req/s")
        + f" · {requests} requests × {seeds} seeds · estimates: {wl['estimates']}"
    )
    console.print(results_table(result.rows, title))
    console.print(
        "Δ and oracle gain are against FCFS on the same engine, workload and seed; "
        "± is the std over seeds. Oracle policies (sjf, srpt) read true lengths: an upper bound."
    )
    if any(w.get("synthetic") for w in result.workloads):
        console.print(
            "[yellow]SYNTHETIC workload[/yellow]: lengths and estimates are generated, not real data."
        )
    if json_out is not None:
        write_json(
            json_out,
            {
                "command": "ssjf " + " ".join(sys.argv[1:]),
                "workload": str(spec),
                "settings": {
                    "engine": engine,
                    "cost": cost,
                    "policies": [e.label for e in entries],
                    "load": settings.load,
                    "rate": rate,
                    "arrivals": str(arrival),
                    "requests": requests,
                    "seeds": list(settings.seeds),
                    "starvation_max_wait": starvation_max_wait,
                    "starvation_factor": starvation_factor,
                    "slo_jct": slo_jct,
                    "slo_ttft": slo_ttft,
                    "predictor": str(predictor) if predictor else None,
                },
                "workloads": result.workloads,
                "rows": result.rows,
                "per_seed": result.per_seed,
            },
        )
        console.print(f"wrote {json_out}")
    if records is not None:
        try:
            write_records(records, result.records)
        except RuntimeError as exc:
            raise _fail(console, str(exc)) from None
        console.print(f"wrote {records}")
    if plot is not None:
        from ssjf.plots import jct_cdf, mean_jct_bars

        try:
            a = jct_cdf(result.jcts, plot / "jct_cdf.png", title=f"JCT CDF · {spec} · {engine}")
            b = mean_jct_bars(
                result.rows, plot / "mean_jct.png", title=f"mean JCT · {spec} · {engine}"
            )
        except RuntimeError as exc:
            raise _fail(console, str(exc)) from None
        console.print(f"wrote {a} and {b}")
