"""What `ssjf simulate` writes after its table: --json, --records, --plot figures, --report page.

Imports of numpy and matplotlib stay inside the functions: ``ssjf --help`` imports the
command module, which imports this one.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from rich.console import Console

    from ssjf.bench.runner import ExperimentResult, PolicyEntry, RunSettings
    from ssjf.bench.sweep import SweepPoint
    from ssjf.cli.html_report import ReportSection


class OutputError(Exception):
    """An output could not be written (a missing optional library): the command's error."""


@dataclass(frozen=True)
class SimRun:
    """What one `ssjf simulate` ran, as its outputs name it; one result per point, in order."""

    workload: str
    entries: Sequence[PolicyEntry]
    #: One point for a single run, several for a load (or rate) sweep.
    points: Sequence[SweepPoint]
    settings: RunSettings
    command: str
    predictor: str | None = None

    @property
    def sweep(self) -> bool:
        return len(self.points) > 1

    def context(self, point: SweepPoint | None = None) -> str:
        """The figures' subtitle at ``point``; without one, the sweep curves' (no load)."""
        from ssjf.plots import figure_context

        s = self.settings
        return figure_context(
            self.workload,
            s.engine,
            s.cost,
            load=point.load if point else None,
            rate=point.rate if point else None,
            requests=s.requests,
            seeds=len(s.seeds),
        )

    def settings_dict(self) -> dict[str, Any]:
        """The run's settings, as written to --json and shown on the --report page."""
        s, guard, slo = self.settings, self.settings.guard, self.settings.slo
        by_rate = self.points[0].rate is not None
        return {
            "engine": s.engine,
            "cost": s.cost,
            "policies": [e.label for e in self.entries],
            # A number for one point, the list of a sweep (one "sweep" block per point).
            "load": [p.load for p in self.points] if self.sweep and not by_rate else s.load,
            "rate": [p.rate for p in self.points] if self.sweep and by_rate else s.rate,
            "arrivals": str(s.arrival),
            "requests": s.requests,
            "seeds": list(s.seeds),
            "starvation_max_wait": guard.max_wait_s if guard else None,
            "starvation_factor": guard.wait_factor if guard else None,
            "slo_jct": slo.jct_s if slo else None,
            "slo_ttft": slo.ttft_s if slo else None,
            "predictor": self.predictor,
            "calibrate": asdict(s.calibrate) if s.calibrate is not None else None,
        }


def write_outputs(
    run: SimRun,
    results: Sequence[ExperimentResult],
    console: Console,
    *,
    json_out: Path | None,
    records: Path | None,
    plot: Path | None,
    report: Path | None,
    explanation: str,
) -> None:
    """Write what was asked, in turn (JSON, records, figures, report), naming each file.

    ``explanation`` says how to read the tables (shown on the report page). Raises
    :class:`OutputError` when records or figures cannot be written.
    """
    from ssjf.cli.sim_report import is_stdout, write_json
    from ssjf.plots import oracle_labels

    if json_out is not None:
        write_json(json_out, _payload(run, results))
        if not is_stdout(json_out):
            console.print(f"wrote {json_out}")
    if records is not None:
        from ssjf.metrics import write_records

        try:
            write_records(records, [table for res in results for table in res.records])
        except RuntimeError as exc:
            raise OutputError(str(exc)) from None
        console.print(f"wrote {records}")
    oracles = oracle_labels(run.entries)
    written, sections = _per_point(run, results, oracles, plot=plot, report=report)
    curves: Path | None = None
    if run.sweep and plot is not None:
        curves = sweep_curves(run, results, plot, oracles)
        written.append(curves)
    if written:
        console.print("wrote " + ", ".join(str(f) for f in written))
    if report is not None:
        _write_report(run, results, report, sections, curves, oracles, explanation)
        console.print(f"wrote {report}")


def _payload(run: SimRun, results: Sequence[ExperimentResult]) -> dict[str, Any]:
    """The --json document: the run's settings and its rows (per point for a sweep)."""
    payload: dict[str, Any] = {
        "command": run.command,
        "workload": run.workload,
        "settings": run.settings_dict(),
    }
    if run.sweep:
        from ssjf.bench.sweep import sweep_blocks

        payload["sweep"] = sweep_blocks(run.points, results)
    else:
        result = results[0]
        payload.update(workloads=result.workloads, rows=result.rows, per_seed=result.per_seed)
    return payload


def _per_point(
    run: SimRun,
    results: Sequence[ExperimentResult],
    oracles: Collection[str],
    *,
    plot: Path | None,
    report: Path | None,
) -> tuple[list[Path], list[ReportSection]]:
    """The figures written (--plot) and report sections (--report): a set per load of a sweep."""
    written: list[Path] = []
    sections: list[ReportSection] = []
    for point, res in zip(run.points, results, strict=True):
        context = run.context(point)
        prefix = f"{point.key}{point.value:g}_" if run.sweep else ""
        figures: list[Path] | None = None
        if plot is not None:
            from ssjf.plots import simulation_figures

            try:
                figures = simulation_figures(
                    res.jcts, res.per_seed, plot, context, oracles, prefix=prefix
                )
            except RuntimeError as exc:
                raise OutputError(str(exc)) from None
            written.extend(figures)
        if report is not None:
            from ssjf.cli.html_report import result_section

            sections.append(
                result_section(point.describe(), res, context, oracles, figures, prefix=prefix)
            )
    return written, sections


def _write_report(
    run: SimRun,
    results: Sequence[ExperimentResult],
    path: Path,
    sections: Sequence[ReportSection],
    curves: Path | None,
    oracles: Collection[str],
    explanation: str,
) -> None:
    """The --report page; a sweep's curves are drawn for it alone when --plot was not given."""
    from ssjf.cli.html_report import read_figures, report_notes, write_report
    from ssjf.extras import missing_modules

    across = []
    if curves is not None:
        across = read_figures([curves])
    elif run.sweep and not missing_modules("plot"):
        with tempfile.TemporaryDirectory() as tmp:
            across = read_figures([sweep_curves(run, results, Path(tmp), oracles)])
    settings: Mapping[str, Any] = {
        "workload": run.workload,
        **run.settings_dict(),
        "estimates": results[0].workloads[0]["estimates"],
    }
    write_report(
        path,
        title=f"ssjf simulate · {run.workload}",
        settings=settings,
        sections=sections,
        command=run.command,
        notes=report_notes([w for res in results for w in res.workloads]),
        figures=across,
        explanation=explanation,
    )


def sweep_curves(
    run: SimRun,
    results: Sequence[ExperimentResult],
    folder: Path,
    oracles: Collection[str],
) -> Path:
    """The sweep's curve plot (mean and p99 JCT against load), ``jct_vs_load.png`` in ``folder``."""
    from ssjf.plots import load_curves

    key = run.points[0].key
    return load_curves(
        {p.value: res.rows for p, res in zip(run.points, results, strict=True)},
        run.context(),
        folder / f"jct_vs_{key}.png",
        oracles=oracles,
        x_label="load (share of the engine's capacity)"
        if key == "load"
        else "arrival rate (req/s)",
    )
