"""What `ssjf bench policies` prints: workloads, one table per workload and engine, the judged figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ssjf.cli.sim_report import format_cell

if TYPE_CHECKING:
    from ssjf.bench.policies import PoliciesConfig, PoliciesResult

#: (key, header, format) of a cell table (format kinds of ``format_cell``).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("load", "load", "f"),
    ("policy", "policy", "s"),
    ("jct_mean", "JCT mean s", "f"),
    ("jct_p50", "p50", "f"),
    ("jct_p99", "p99", "f"),
    ("ttft_p99", "TTFT p99", "f"),
    ("max_wait", "max wait", "f"),
    ("preemptions", "preempt", "f"),
    ("recomputed_tokens", "recomp. tok", "f"),
    ("throughput_rps", "req/s", "f"),
    ("goodput", "goodput", "f"),
    ("oracle_gain_fraction", "oracle gain", "pct"),
    ("oracle", "vs", "s"),
)
JUDGED: tuple[tuple[str, str, str], ...] = (
    ("workload", "workload", "s"),
    ("engine", "engine", "s"),
    ("oracle_sjf_gain", "oracle SJF gain", "pct"),
    ("default_share_at_1_1x", "default @p99≤1.1x", "pct"),
    ("truth_share_at_1_1x", "truth-fed @1.1x", "pct"),
    ("ratio_to_truth", "ratio", "f"),
    ("mean_first_share_at_2x", "mean-first @2x", "pct"),
    ("guard_share_at_1_1x", "guard @1.1x", "pct"),
)


def _table(
    rows: Sequence[Mapping[str, Any]], title: str, cols: Sequence[tuple[str, str, str]]
) -> Table:
    table = Table(title=title)
    for key, header, kind in cols:
        # Policy specs are the rows' names: never cut (``ssjf:tail=1.1`` vs ``ssjf``).
        table.add_column(
            header, justify="left" if kind == "s" else "right", no_wrap=key == "policy"
        )
    for i, row in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        end = nxt is not None and nxt["load"] != row["load"]
        cells = []
        for key, _, kind in cols:
            value = row.get(key)
            if kind == "pct" and value is not None:
                cells.append(f"{float(value) * 100:.0f}%")
            else:
                cells.append(format_cell(row, key, kind))
        table.add_row(*cells, end_section=end)
    return table


def _judged_table(judged: Sequence[Mapping[str, Any]], load: float) -> Table:
    table = Table(title=f"judged at load {load:g}, Poisson: best share of oracle SJF's mean gain")
    for _, header, kind in JUDGED:
        table.add_column(header, justify="left" if kind == "s" else "right")
    for row in judged:
        cells = []
        for key, _, kind in JUDGED:
            value = row.get(key)
            if kind == "pct":
                cells.append("—" if value is None else f"{float(value) * 100:.0f}%")
            elif kind == "f":
                cells.append("—" if value is None else f"{float(value):.2f}")
            else:
                cells.append(str(value))
        if not row.get("judged"):
            cells[3] = "not judged"
        table.add_row(*cells)
    return table


def print_report(console: Console, cfg: PoliciesConfig, res: PoliciesResult) -> None:
    """Workloads, a table per workload and engine, then the judged figures and the timing."""
    from ssjf.bench.policies_matrix import default_policy

    for d in res.workloads:
        leaked = d.get("leaked_served_prompts")
        tau = d.get("estimate_tau")
        console.print(
            f"[bold]{d['workload']}[/bold]: trained on {d['training_data']} "
            f"({d.get('train_records', '?')} records); serves {d['held_out_data']} "
            f"({d['served_records']} records); leaked prompts "
            f"{'n/a (no text)' if leaked is None else leaked}; "
            f"estimate tau {'—' if tau is None else f'{tau:.2f}'}",
            highlight=False,
        )
    n = f"{cfg.requests} requests × {len(cfg.seeds)} seeds"
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for cell in res.cells:
        k = cell.key
        groups.setdefault((k["workload"], k["engine"], k["arrivals"]), []).extend(cell.rows)
    for (wl, eng, arr), rows in groups.items():
        title = f"{wl} · {eng} · arrivals {arr} · {n} (means over seeds)"
        console.print(_table(rows, title, COLUMNS))
    if res.judged:
        console.print(_judged_table(res.judged, cfg.curve_load))
        console.print(
            f"default policy {default_policy()}: its tail budget swept "
            f"({', '.join('off' if t is None else f'{t:g}' for t in cfg.tail_grid)}); "
            "truth-fed = the same policy given the true lengths; ratio = default / truth-fed "
            "(target ≥ 0.75); mean-first = best of the same curve with p99 ≤ 2x FCFS's; "
            f"guard = {', '.join(cfg.guard_policies)} with a max wait in multiples of FCFS's "
            "p99 wait.",
            highlight=False,
        )
    t = res.timing
    console.print(
        f"wall time {t.get('total_wall_s', 0):.0f} s (training {t.get('train_wall_s', 0):.0f} s, "
        f"{t.get('cell_wall_s_mean', 0):.2f} s per cell)",
        highlight=False,
    )
