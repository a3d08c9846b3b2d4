"""Shared output helpers for the simulation commands: tables, JSON, progress."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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


def _fmt(row: Mapping[str, Any], key: str, kind: str) -> str:
    value = row.get(key)
    if kind == "s":
        return str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    if kind == "pct":
        std = row.get(f"{key}_std")
        s = f"{v * 100:+.1f}%"
        return s + (f"±{float(std) * 100:.1f}" if std and float(std) > 0 else "")
    if kind == "pm":
        std = row.get(f"{key}_std")
        s = f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"
        return s + (f"±{float(std):.2g}" if std and float(std) > 0 else "")
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def make_console() -> Console:
    """A console at least 120 columns wide, so result tables do not wrap when piped."""
    width = Console().width
    return Console(width=max(width, 120))


def results_table(
    rows: Sequence[Mapping[str, Any]],
    title: str,
    columns: Sequence[tuple[str, str, str]] = DEFAULT_COLUMNS,
    extra_first: Sequence[tuple[str, str, str]] = (),
) -> Table:
    """A rich table of result rows (± = std over seeds)."""
    cols = [*extra_first, *columns]
    table = Table(title=title)
    for _, header, kind in cols:
        table.add_column(header, justify="left" if kind == "s" else "right")
    for row in rows:
        table.add_row(*(_fmt(row, key, kind) for key, _, kind in cols))
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


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as JSON (NaN/inf become null)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return p


@contextmanager
def progress_bar(console: Console, description: str, total: int) -> Iterator[ProgressFn]:
    """A rich progress bar; yields a callback (done, total, label)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[label]}"),
        console=console,
        transient=True,
    ) as prog:
        task = prog.add_task(description, total=total, label="")

        def update(done: int, total_: int, label: str) -> None:
            prog.update(task, completed=done, total=total_, label=label)

        yield update
