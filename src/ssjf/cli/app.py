"""The typer applications every command module attaches to, and the ``--version`` flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand

from ssjf.cli.metavars import CleanHelpGroup

app = typer.Typer(
    name="ssjf",
    cls=CleanHelpGroup,  # metavars (FILE, N, SPEC) in help, not Python types
    help="Speculative shortest-job-first scheduling for LLM serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(
    help="Benchmarks that print their figures (and write them with --json).",
    cls=CleanHelpGroup,
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


def version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("ssjf")
    except PackageNotFoundError:
        import ssjf

        return str(getattr(ssjf, "__version__", "unknown"))


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ssjf {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Speculative shortest-job-first scheduling for LLM serving."""


def lazy_help(**texts: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose options named in ``texts`` get their help only when it is shown.

    Help generated from the engine, cost-model and workload registries needs the
    simulator (numpy and more); building it when ``ssjf simulate --help`` is
    asked for, not at import, keeps ``ssjf --help`` light.
    """

    class LazyHelpCommand(TyperCommand):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            for param in self.params:
                text = texts.get(param.name or "")
                if text is not None:
                    param.help = text()  # type: ignore[attr-defined]  # options have help
            super().format_help(ctx, formatter)

    return LazyHelpCommand
