"""`ssjf bench predictor --online`: run the replay of :mod:`ssjf.bench.online_replay` and print it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _f(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def print_online(console: Any, doc: dict[str, Any]) -> None:
    """Per window: tau / share per arm and the retrains there; then the spans and the checks."""
    from rich.table import Table

    cfg, res = doc["config"], doc["result"]
    arms = list(cfg["arms"])
    st = res["stream"]
    console.print(
        f"stream: {st['unseen_request_share']:.0%} of requests by {len(st['unseen_generators'])} "
        f"generators absent from training ({st['unseen_set']}), the rest {st['seen_set']}; "
        f"shipped {st['shipped_family']} on {st['train_records']:,} records of "
        f"{', '.join(st['train_sets'])}; {st['repeat_prompt_share']:.0%} of requests repeat "
        "an earlier prompt (tau fresh: the others)"
    )
    table = Table(
        title=f"online replay · serial engine · paper cost · load {cfg['load']:g} · "
        f"{cfg['requests']} requests × {len(cfg['seeds'])} seeds · tau / share per window"
    )
    table.add_column("requests", no_wrap=True)
    for arm in arms:
        table.add_column(arm, justify="right", no_wrap=True)
    table.add_column("mean JCT fcfs / sjf", justify="right", no_wrap=True)
    table.add_column("retrains (seed:version, swapped*)", no_wrap=False)
    for w in res["windows"]:
        figs = w["arms"]
        table.add_row(
            f"{w['start']}–{w['stop'] - 1}",
            *(f"{_f(figs[a]['tau'])} / {_f(figs[a]['oracle_gain_share'], '.0%')}" for a in arms),
            f"{figs['fcfs']['jct_mean']:.0f} / {figs['sjf']['jct_mean']:.0f} s",
            " ".join(
                f"{e['seed']}:v{e['version']}{'*' if e['swapped'] else ''}" for e in w["retrains"]
            ),
        )
    console.print(table)
    spans = Table(
        title="after N completions (requests arriving once every arm of the run had N completions)"
    )
    for col in ("span", "label"):
        spans.add_column(col, no_wrap=True)
    for col in ("tau", "unseen", "seen", "fresh", "share", "mean JCT", "p99 JCT", "max wait"):
        spans.add_column(col, justify="right", no_wrap=True)
    spans.add_column("tau / shipped", justify="right")
    spans.add_column("share / shipped", justify="right")
    for span, figs in res["spans"].items():
        ratios = res["ratios_vs_shipped"].get(span, {})
        for label, r in figs.items():
            rr = ratios.get(label, {})
            taus = [_f(r[k]) for k in ("tau", "tau_unseen", "tau_seen", "tau_fresh")]
            spans.add_row(
                span.replace("_", " "),
                label,
                *taus,
                _f(r["oracle_gain_share"], ".0%"),
                f"{r['jct_mean']:.1f}",
                f"{r['jct_p99']:.1f}",
                _f(r["wait_max"], ".1f"),
                _f(rr.get("tau"), ".2f"),
                _f(rr.get("oracle_gain_share"), ".2f"),
            )
    console.print(spans)
    for name, ok in res["checks"].items():
        mark = "[green]yes[/green]" if ok else "[red]no[/red]" if ok is not None else "—"
        console.print(f"{name}: {mark}")
    fits = [e["fit_s"] for e in res["events"]]
    swaps = sum(e["swapped"] for e in res["events"])
    console.print(
        f"share = (FCFS - arm) / (FCFS - oracle SJF) of mean JCT on the same requests; tau = "
        f"pooled Kendall tau-b of the estimates scheduled with vs true lengths; "
        f"{len(fits)} retrains ({swaps} swapped, fit {sum(fits):.0f} s in all, charged no "
        f"simulated time); tau unseen / seen: requests by generators absent from / present in "
        f"training; fresh: requests whose prompt had not arrived before; wall {res['wall_s']:.0f} s"
    )


def run_online_cli(
    *,
    family: str,
    requests: int | None,
    seeds: int | None,
    window: int | None,
    retrain: str | None,
    json_out: Path | None,
    plot: Path | None,
) -> None:
    """Build the config, replay, print, and write the JSON / PNG if asked."""
    from dataclasses import replace

    from ssjf.bench.online_replay import OnlineConfig, config_dict, run_online
    from ssjf.cli.sim_report import command_line, make_console, progress_bar, write_json
    from ssjf.datadir import DataError

    console = make_console()
    try:
        cfg = OnlineConfig(family=family)
        over: dict[str, Any] = {"requests": requests, "window": window, "retrain": retrain}
        if seeds is not None:
            over["seeds"] = tuple(range(seeds))
        if requests is not None:  # "after N completions" only where the run has N
            over["marks"] = tuple(m for m in cfg.marks if m < requests)
        cfg = replace(cfg, **{k: v for k, v in over.items() if v is not None})
        with progress_bar("bench predictor --online", 1, cfg.requests) as prog:
            result = run_online(cfg, progress=prog)
    except (ValueError, DataError) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    doc = {
        "command": command_line(),
        "config": config_dict(cfg),
        "result": result,
    }
    print_online(console, doc)
    if json_out is not None:
        write_json(json_out, doc)
        console.print(f"wrote {json_out}")
    if plot is not None:
        from ssjf.bench.online_plot import plot_online

        plot_online(doc, plot)
        console.print(f"wrote {plot}")
