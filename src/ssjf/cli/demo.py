"""`ssjf demo` (what `make demo` runs): FCFS vs the default policy, SSJF and oracle SJF on real data."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import typer

from ssjf.cli.app import app
from ssjf.cli.needs import need_family
from ssjf.extras import require_extra
from ssjf.policies import DEFAULT_POLICY, parse_policy_spec

EXPLANATION = """\
[bold]How to read this.[/bold] Each row replays the same {requests} requests (same arrival times,
same true lengths) under one scheduling policy on the same engine. [bold]JCT[/bold] is a request's
end-to-end latency (arrival to last token). [bold]fcfs[/bold] serves in arrival order, so short
requests wait behind long ones; [bold]ssjf[/bold] serves the request with the shortest [italic]predicted[/italic]
output first, using the predictor named above, which never sees the true lengths;
[bold]sjf[/bold] is the oracle that knows the true lengths (an upper bound no real system reaches);
[bold]{default}[/bold], the default policy, is ssjf under a tail budget: no request is overtaken by
more than {pct}% of the predicted work FCFS would serve before it and itself (or of the recent p99 of
that work, if larger), so p99 stays near FCFS's and part of the mean gain remains. "Δ vs FCFS" is the change in mean JCT (negative = faster); "oracle gain" is the
share of the oracle's improvement that the policy captures. Ordering by length helps most when
requests queue (the serial engine); with continuous batching many requests run at once, so
there is less queueing to save. "max wait" shows the price: the longest time any request waited."""


def _tail_pct() -> str:
    """The default policy's tail budget as a percentage of FCFS work (``1.1`` -> ``10``)."""
    tail = float(parse_policy_spec(DEFAULT_POLICY)[1].get("tail", 1.0))
    return f"{(tail - 1.0) * 100:g}"


@app.command("demo")
def demo_cmd(
    requests: int = typer.Option(2000, "--requests", "-n", min=1, help="requests per run"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="seeds per engine"),
    load: float = typer.Option(0.85, "--load", help="utilisation of each engine's capacity"),
    engines: str = typer.Option(
        "serial=paper,continuous:8=affine", "--engines", help="ENGINE=COST pairs, comma-separated"
    ),
    generator: str | None = typer.Option(
        None, "--generator", help="AlpacaEval generator whose lengths to use"
    ),
    predictor: str = typer.Option(
        "tfidf", "--predictor", help="predictor family trained on the other prompts"
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="write every figure to this JSON file"
    ),
    plot: Path | None = typer.Option(None, "--plot", help="write PNG figures into this directory"),
) -> None:
    """FCFS vs the default policy, SSJF and oracle SJF on Azure arrivals with AlpacaEval lengths."""
    need_family(predictor, "ssjf demo")
    if plot is not None:
        require_extra("plot", "ssjf demo --plot")
    from ssjf.bench.demo import DemoConfig, run_demo
    from ssjf.cli.sim_report import make_console, progress_bar, results_table, write_json

    console = make_console()
    pairs = []
    for part in engines.split(","):
        eng, sep, cost = part.strip().partition("=")
        if not sep:
            console.print(f"[red]error:[/red] --engines: expected ENGINE=COST, got {part!r}")
            raise typer.Exit(2)
        pairs.append((eng, cost))
    cfg = DemoConfig(
        engines=tuple(pairs),
        load=load,
        requests=requests,
        seeds=tuple(range(seeds)),
        predictor=predictor,
    )
    if generator:
        cfg = replace(cfg, generator=generator)
    t0 = time.perf_counter()
    with progress_bar("demo", len(pairs) * seeds * len(cfg.policies), requests) as prog:
        try:
            out = run_demo(cfg, progress=prog, keep_results=plot is not None)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    wall = time.perf_counter() - t0
    d = out.describe
    if d.get("synthetic"):
        console.print(
            "[bold yellow]SYNTHETIC WORKLOAD[/bold yellow]: no real data was found, so lengths, "
            "arrivals and predictions below are generated. Set SSJF_DATA_DIR to the data directory."
        )
    console.print(f"[bold]data[/bold]      {d['data']}")
    console.print(
        f"[bold]arrivals[/bold]  {d['arrivals']} to load {load:g} of each engine's capacity"
    )
    console.print(f"[bold]predictor[/bold] {d['predictor']}")
    console.print(f"[bold]default[/bold]   {d['default_policy']} (the default policy)")
    for eng, cost in pairs:
        rows = [r for r in out.result.rows if r["engine"] == eng]
        console.print(
            results_table(
                rows, f"{eng} engine · cost {cost} · {requests} requests × {seeds} seeds (± std)"
            )
        )
    console.print(EXPLANATION.format(requests=requests, default=DEFAULT_POLICY, pct=_tail_pct()))
    console.print(f"wall time {wall:.1f} s")
    if json_out is not None:
        write_json(
            json_out,
            {
                "command": "ssjf " + " ".join(sys.argv[1:]),
                "describe": d,
                "wall_s": wall,
                "rows": out.result.rows,
                "per_seed": out.result.per_seed,
                "workloads": out.result.workloads,
            },
        )
        console.print(f"wrote {json_out}")
    if plot is not None:
        from ssjf.bench.runner import parse_policies
        from ssjf.plots import figure_context, oracle_labels, simulation_figures

        oracles = oracle_labels(parse_policies(",".join(cfg.policies)))
        for eng, cost in pairs:
            jcts = {
                k.split(" ", 1)[1]: v
                for k, v in out.result.jcts.items()
                if k.split(" ", 1)[0] == eng
            }
            context = figure_context(
                "demo: AlpacaEval lengths, Azure arrivals", eng, cost, load=load,
                requests=requests, seeds=seeds,
            )  # fmt: skip
            simulation_figures(
                jcts,
                [r for r in out.result.per_seed if r["engine"] == eng],
                plot,
                context,
                oracles,
                prefix=f"demo_{eng.replace(':', '_')}_",
            )
        console.print(f"wrote figures to {plot}")
