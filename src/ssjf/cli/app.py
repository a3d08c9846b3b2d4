"""The typer applications every command module attaches to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ssjf",
    help="Speculative shortest-job-first scheduling for LLM serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(
    help="Benchmarks that print their figures (and write them with --json).",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")
