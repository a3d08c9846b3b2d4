"""Load (or rate) sweeps: the same policies, workload and seeds at several loads.

Each point of a sweep is a full :func:`~ssjf.bench.runner.run_experiment` (all
policies x seeds) with only the load (or the arrival rate) changed, so the
points differ in nothing else: same pool, same seeds, hence the same sampled
requests at every load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssjf.bench.runner import ExperimentResult, PolicyEntry, Progress, RunSettings, run_experiment
from ssjf.workload.sources import Pool


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One load (utilisation of capacity) or one arrival rate (req/s); the rate wins."""

    load: float | None
    rate: float | None = None

    @property
    def key(self) -> str:
        """The row key this point sets: ``load`` or ``rate``."""
        return "load" if self.rate is None else "rate"

    @property
    def value(self) -> float:
        value = self.load if self.rate is None else self.rate
        assert value is not None  # a point has a load or a rate
        return value

    def describe(self) -> str:
        """``load 0.8`` or ``rate 2 req/s``, as in table and figure titles."""
        return f"load {self.value:g}" if self.rate is None else f"rate {self.value:g} req/s"


def parse_values(text: str, option: str) -> tuple[float, ...]:
    """``"0.5,0.7,0.9"`` -> (0.5, 0.7, 0.9): positive numbers, repeats dropped, order kept."""
    values: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{option}: expected numbers separated by commas, got {part!r}"
            ) from None
        if not value > 0:  # also rejects nan
            raise ValueError(f"{option}: {part} is not a positive number")
        if value not in values:
            values.append(value)
    if not values:
        raise ValueError(f"{option}: give at least one number")
    return tuple(values)


def sweep_points(load: str, rate: str | None) -> list[SweepPoint]:
    """The points of ``--load L1,L2,..`` or, when given, ``--rate R1,R2,..``."""
    if rate is not None:
        return [SweepPoint(load=None, rate=r) for r in parse_values(rate, "--rate")]
    return [SweepPoint(load=x) for x in parse_values(load, "--load")]


def describe_points(points: Sequence[SweepPoint]) -> str:
    """``load 0.8`` for one point, ``loads 0.5, 0.7, 0.9`` for a sweep."""
    if len(points) == 1:
        return points[0].describe()
    values = ", ".join(f"{p.value:g}" for p in points)
    return f"loads {values}" if points[0].rate is None else f"rates {values} req/s"


def run_sweep(
    pool: Pool,
    entries: Sequence[PolicyEntry],
    settings: RunSettings,
    points: Sequence[SweepPoint],
    *,
    progress: Progress | None = None,
    **kwargs: Any,
) -> list[ExperimentResult]:
    """One :func:`run_experiment` per point; ``progress`` counts runs over the whole sweep."""
    runs = len(settings.seeds) * len(entries)
    total = runs * len(points)
    results: list[ExperimentResult] = []
    for i, point in enumerate(points):
        where = f"{point.describe()} · " if len(points) > 1 else ""

        def report(
            done: int, _total: int, label: str, base: int = i * runs, where: str = where
        ) -> None:
            if progress is not None:
                progress(base + done, total, where + label)

        at = dataclasses.replace(settings, load=point.load, rate=point.rate)
        results.append(run_experiment(pool, entries, at, progress=report, **kwargs))
    return results


def sweep_rows(
    points: Sequence[SweepPoint], results: Sequence[ExperimentResult]
) -> list[dict[str, Any]]:
    """Every point's aggregated rows, each stating its load (or rate), in sweep order."""
    return [
        {**row, point.key: point.value}
        for point, res in zip(points, results, strict=True)
        for row in res.rows
    ]


def sweep_blocks(
    points: Sequence[SweepPoint], results: Sequence[ExperimentResult]
) -> list[dict[str, Any]]:
    """The JSON of a sweep: one block per point with its load, rate, rows and per-seed rows."""
    return [
        {
            "load": point.load,
            "rate": point.rate,
            "workloads": res.workloads,
            "rows": res.rows,
            "per_seed": res.per_seed,
        }
        for point, res in zip(points, results, strict=True)
    ]
