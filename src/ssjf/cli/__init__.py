"""`ssjf` command line: each command lives in its own module and registers on import.

Command modules import heavy dependencies (torch, fastapi, matplotlib) inside
the command functions, so `ssjf --help` stays fast and light.
"""

from __future__ import annotations

import typer

from ssjf.cli import bench_calibration as _bench_calibration  # noqa: F401
from ssjf.cli import bench_magnus as _bench_magnus  # noqa: F401
from ssjf.cli import bench_paper as _bench_paper  # noqa: F401
from ssjf.cli import bench_policies as _bench_policies  # noqa: F401
from ssjf.cli import bench_predictor as _bench_predictor  # noqa: F401
from ssjf.cli import bench_serve as _bench_serve  # noqa: F401
from ssjf.cli import bench_sim_speed as _bench_sim_speed  # noqa: F401
from ssjf.cli import demo as _demo  # noqa: F401
from ssjf.cli import info as _info  # noqa: F401
from ssjf.cli import predict_cmds as _predict_cmds  # noqa: F401
from ssjf.cli import serve as _serve  # noqa: F401
from ssjf.cli import simulate as _simulate  # noqa: F401
from ssjf.cli.app import app, bench_app

__all__ = ["app", "bench_app", "main"]


def main() -> None:
    """Console-script entry point: a missing extra is one line on stderr and status 2."""
    from ssjf.extras import MissingExtra

    try:
        app()
    except MissingExtra as exc:
        # typer.echo, not rich: rich would read "[plot]" in the message as markup.
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
