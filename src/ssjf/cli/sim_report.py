"""Shared output helpers for the simulation commands: tables, JSON, progress."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ssjf.bench.runner import Progress as ProgressFn

#: (key, header, format) of the default results table.
DEFAULT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("policy", "policy", "s"),
    ("jct_mean", "JCT mean s", "pm"),
    ("jct_p50", "p50", "f"),
    ("jct_p99", "p99", "f"),
    ("jct_change_vs_fcfs", "Δ vs FCFS", "pct"),
    ("oracle_gain_fraction", "oracle gain", "pct"),
    ("queue_mean", "queue", "f"),
    ("ttft_mean", "TTFT", "f"),
    ("max_wait", "max wait", "f"),
    ("throughput_rps", "req/s", "f"),
)
#: Added to the table when an SLO is given (``--slo-jct`` / ``--slo-ttft``).
GOODPUT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("slo_attainment", "SLO met", "share"),
    ("goodput_rps", "goodput req/s", "f"),
)


def format_cell(row: Mapping[str, Any], key: str, kind: str) -> str:
    value = row.get(key)
    if kind == "s":
        return str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    if kind == "share":  # a fraction of all requests, e.g. SLO attainment
        return f"{v * 100:.1f}%"
    if kind == "pct":
        std = row.get(f"{key}_std")
        s = f"{v * 100:+.1f}%"
        return s + (f"±{float(std) * 100:.1f}" if std and float(std) > 0 else "")
    if kind == "pm":
        std = row.get(f"{key}_std")
        s = f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"
        return s + (f"±{float(std):.2g}" if std and float(std) > 0 else "")
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def make_console(stderr: bool = False) -> Console:
    """A console at least 120 columns wide, so result tables do not wrap when piped.

    ``stderr``: print there (when stdout carries the JSON, ``--json -``).
    """
    width = Console(stderr=stderr).width
    return Console(width=max(width, 120), stderr=stderr)


def goodput_note(slo_jct: float | None, slo_ttft: float | None) -> str:
    """What the goodput columns count, e.g. "JCT ≤ 20 s and TTFT ≤ 1 s"."""
    parts = [
        f"{name} ≤ {v:g} s" for name, v in (("JCT", slo_jct), ("TTFT", slo_ttft)) if v is not None
    ]
    return (
        f"SLO met: share of requests with {' and '.join(parts)}; "
        "goodput: those requests per second of the run."
    )


def results_table(
    rows: Sequence[Mapping[str, Any]],
    title: str,
    columns: Sequence[tuple[str, str, str]] = DEFAULT_COLUMNS,
    extra_first: Sequence[tuple[str, str, str]] = (),
    section_key: str | None = None,
) -> Table:
    """A rich table of result rows (± = std over seeds).

    ``section_key``: draw a line between rows whose value of that key differs
    (e.g. one block of policies per load of a sweep).
    """
    cols = [*extra_first, *columns]
    table = Table(title=title)
    for _, header, kind in cols:
        table.add_column(header, justify="left" if kind == "s" else "right")
    for i, row in enumerate(rows):
        last = i + 1 == len(rows)
        end = (
            section_key is not None
            and not last
            and rows[i + 1].get(section_key) != row.get(section_key)
        )
        table.add_row(*(format_cell(row, key, kind) for key, _, kind in cols), end_section=end)
    return table


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array
        return _jsonable(value.tolist())
    return value


def command_line() -> str:
    """The command being run, as a shell would take it back (recorded in JSON outputs)."""
    import shlex

    return "ssjf " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def is_stdout(path: str | Path | None) -> bool:
    """``-`` names standard output (``--json -``)."""
    return path is not None and str(path) == "-"


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as JSON (NaN/inf become null); ``-`` writes to standard output."""
    text = json.dumps(_jsonable(payload), indent=2) + "\n"
    p = Path(path)
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return p
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@contextmanager
def progress_bar(
    description: str,
    runs: int,
    requests_per_run: int,
    *,
    quiet: bool = False,
    console: Console | None = None,
) -> Iterator[ProgressFn]:
    """A progress bar over requests simulated, with an ETA, on standard error.

    Yields the runner's callback (runs done, runs in all, label); each finished
    run adds its ``requests_per_run`` requests. Shown only when standard error
    is a terminal and not ``quiet`` (e.g. the JSON goes to standard output), so
    pipes and logs get no control codes.
    """
    console = console if console is not None else Console(stderr=True)
    per_run = max(int(requests_per_run), 1)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} requests"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[label]}"),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    ) as prog:
        task = prog.add_task(description, total=runs * per_run, label="")

        def update(done: int, total_: int, label: str) -> None:
            prog.update(task, completed=done * per_run, total=total_ * per_run, label=label)

        yield update
