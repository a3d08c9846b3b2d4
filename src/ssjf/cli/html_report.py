"""`--report FILE.html`: one self-contained page with a run's settings, tables and figures.

Standard library only (``html.escape`` and f-strings): figures are embedded as
base64 PNG, styles are inline, nothing is fetched when the page is opened. Every
string that can come from outside (workload names, file paths, the command
line, policy labels) goes through :func:`html.escape`. Table cells are formatted
by the same function as the printed table, so the numbers match it.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ssjf.cli.sim_report import GOODPUT_COLUMNS, format_cell
from ssjf.plots import policy_label

#: The report's table, in column groups of (key, header, format): the printed table's
#: figures with the tail (p99, max) beside every mean.
Column = tuple[str, str, str]
REPORT_COLUMNS: tuple[tuple[str, tuple[Column, ...]], ...] = (
    (
        "JCT (s)",
        (
            ("jct_mean", "mean", "pm"),
            ("jct_p50", "p50", "f"),
            ("jct_p99", "p99", "f"),
            ("jct_max", "max", "f"),
        ),
    ),
    (
        "vs FCFS (paired)",
        (
            ("jct_change_vs_fcfs", "Δ mean", "pct"),
            ("jct_p99_change_vs_fcfs", "Δ p99", "pct"),
            ("oracle_gain_fraction", "oracle gain", "pct"),
        ),
    ),
    (
        "queue wait (s)",
        (("queue_mean", "mean", "f"), ("queue_p99", "p99", "f"), ("max_wait", "max", "f")),
    ),
    ("TTFT (s)", (("ttft_mean", "mean", "f"), ("ttft_p99", "p99", "f"))),
    ("throughput", (("throughput_rps", "req/s", "f"),)),
)


#: Figure file stem (without a section's prefix) -> caption.
CAPTIONS = {
    "jct_ccdf": "JCT tail: share of requests slower than x, both axes log-scaled; "
    "where a curve crosses the p99 line is its p99. Dashed: oracle.",
    "jct_mean_p99": "Mean and p99 JCT per policy. Error bars: std over seeds of the paired "
    "difference from FCFS (same jobs per seed). Hatched: oracle.",
    "paired_vs_fcfs": "Change vs FCFS per seed (dots) and its mean (bar), for mean and p99 "
    "JCT; negative = faster. Hatched bars, hollow dots: oracle.",
    "jct_vs_load": "Mean and p99 JCT against load, per policy (mean over seeds). Dashed: oracle.",
    "jct_vs_rate": "Mean and p99 JCT against the arrival rate, per policy (mean over seeds). "
    "Dashed: oracle.",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:95em;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
.sub{color:#555;margin-top:0} .note{background:#fff6d5;padding:.4em .8em;border-left:4px solid #e0b000}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
th,td{padding:.25em .5em;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left} table.settings td{text-align:left;white-space:normal}
thead th{text-align:center;background:#f4f4f4} table.settings th{text-align:left}
td+td,th[colspan]{border-left:1px solid #eee} .scroll{overflow-x:auto}
tr.oracle td{font-style:italic;color:#555} code{font-size:.9em;word-break:break-all}
figure{margin:1em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em} footer{color:#777;font-size:.85em;margin-top:2em}
"""


@dataclass(frozen=True, slots=True)
class ReportFigure:
    """A PNG to embed, with its caption."""

    png: bytes
    caption: str


@dataclass(frozen=True, slots=True)
class ReportSection:
    """One engine/cost/load: its result rows and figures (a load sweep has one per load)."""

    heading: str
    rows: Sequence[Mapping[str, Any]]
    figures: Sequence[ReportFigure] = ()
    oracles: Collection[str] = field(default_factory=frozenset)
    context: str = ""


def read_figures(paths: Sequence[Path], prefix: str = "") -> list[ReportFigure]:
    """Figures from PNG files, captioned by their stem (``prefix`` removed)."""
    out = []
    for p in paths:
        stem = p.stem.removeprefix(prefix)
        out.append(ReportFigure(png=p.read_bytes(), caption=CAPTIONS.get(stem, stem)))
    return out


def result_section(
    heading: str,
    result: Any,
    context: str,
    oracles: Collection[str],
    figures: Sequence[Path] | None = None,
    prefix: str = "",
) -> ReportSection:
    """A section from an ``ExperimentResult`` with ``figures`` (PNG files) embedded.

    Without ``figures`` they are drawn into a temporary folder, provided the
    result kept its JCTs (``RunSettings.keep_results``) and matplotlib is
    installed; otherwise the section has the table only (:func:`report_notes`
    says why).
    """
    from ssjf.extras import missing_modules

    if figures is not None:
        return ReportSection(
            heading, result.rows, read_figures(figures, prefix), frozenset(oracles), context
        )
    drawn: list[ReportFigure] = []
    if any(result.jcts.values()) and not missing_modules("plot"):
        from ssjf.plots import simulation_figures

        with tempfile.TemporaryDirectory() as tmp:
            paths = simulation_figures(
                result.jcts, result.per_seed, tmp, context, oracles, prefix=prefix
            )
            drawn = read_figures(paths, prefix)
    return ReportSection(heading, result.rows, drawn, frozenset(oracles), context)


def report_notes(workloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """Warnings for the top of the page: synthetic data, figures left out."""
    from ssjf.extras import missing_modules

    notes = []
    if any(w.get("synthetic") for w in workloads):
        notes.append("SYNTHETIC workload: lengths and estimates are generated, not real data.")
    if missing_modules("plot"):
        notes.append("Figures left out: matplotlib is not installed (pip install 'ssjf[plot]').")
    return notes


def _table(rows: Sequence[Mapping[str, Any]], oracles: Collection[str]) -> str:
    groups = list(REPORT_COLUMNS)
    if any("goodput_rps" in r for r in rows):
        groups.append(("goodput (SLO)", GOODPUT_COLUMNS))
    cols = [c for _, group in groups for c in group]
    top = '<th rowspan="2">policy</th>' + "".join(
        f'<th colspan="{len(group)}">{html.escape(name)}</th>' for name, group in groups
    )
    sub = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cols)
    body = []
    for r in rows:
        label = str(r.get("policy", ""))
        cells = [policy_label(label, oracles)]
        cells += [format_cell(r, key, kind) for key, _, kind in cols]
        cls = ' class="oracle"' if label in oracles else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{top}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(fig: ReportFigure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    cap = html.escape(fig.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{cap}">'
        f"<figcaption>{cap}</figcaption></figure>"
    )


def _settings(settings: Mapping[str, Any]) -> str:
    def show(v: Any) -> str:
        if v is None or v == "":
            return "—"
        if isinstance(v, (list, tuple)):
            return ", ".join(str(x) for x in v)
        return str(v)

    rows = "".join(
        f"<tr><th>{html.escape(str(k).replace('_', ' '))}</th><td>{html.escape(show(v))}</td></tr>"
        for k, v in settings.items()
    )
    return f'<table class="settings">{rows}</table>'


def render_report(
    *,
    title: str,
    settings: Mapping[str, Any],
    sections: Sequence[ReportSection],
    command: str = "",
    notes: Sequence[str] = (),
    figures: Sequence[ReportFigure] = (),
    explanation: str = "",
) -> str:
    """The page as a string: settings, notes, one table (and figures) per section, then
    ``figures`` that span sections (e.g. a load curve)."""
    from ssjf import __version__

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">ssjf {html.escape(__version__)} · {now}</p>',
    ]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    parts += ["<h2>Settings</h2>", _settings(settings)]
    if command:
        parts.append(f"<p>command: <code>{html.escape(command)}</code></p>")
    if explanation:
        parts.append(f"<p>{html.escape(explanation)}</p>")
    for sec in sections:
        parts.append(f"<section><h2>{html.escape(sec.heading)}</h2>")
        if sec.context:
            parts.append(f'<p class="sub">{html.escape(sec.context)}</p>')
        parts.append(_table(sec.rows, sec.oracles))
        parts += [_figure(f) for f in sec.figures]
        parts.append("</section>")
    if figures:
        parts.append("<section><h2>Across the sections above</h2>")
        parts += [_figure(f) for f in figures]
        parts.append("</section>")
    parts.append(f"<footer>written by ssjf {html.escape(__version__)} on {now}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    path: str | Path,
    *,
    title: str,
    settings: Mapping[str, Any],
    sections: Sequence[ReportSection],
    command: str = "",
    notes: Sequence[str] = (),
    figures: Sequence[ReportFigure] = (),
    explanation: str = "",
) -> Path:
    """Write :func:`render_report`'s page to ``path`` (folders made as needed)."""
    page = render_report(
        title=title,
        settings=settings,
        sections=sections,
        command=command,
        notes=notes,
        figures=figures,
        explanation=explanation,
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(page, encoding="utf-8")
    return p
