"""Figures of `ssjf bench policies --plot`: per cell the tail figures, per curve cell the trade-off."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssjf.bench.policies import PoliciesConfig, PoliciesResult


def _slug(*parts: object) -> str:
    text = "_".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def write_figures(res: PoliciesResult, folder: str | Path, cfg: PoliciesConfig) -> list[Path]:
    """CCDF, mean/p99 bars and paired changes per cell; a trade-off figure per curve cell."""
    from ssjf.bench.policies_matrix import engine_preset
    from ssjf.plots import figure_context, simulation_figures
    from ssjf.plots.tradeoff import tradeoff_curves

    d = Path(folder)
    costs = {engine_preset(e).name: engine_preset(e) for e in cfg.engines}

    def context(k: Mapping[str, Any]) -> str:
        preset = costs[k["engine"]]
        return figure_context(
            f"{k['workload']} · arrivals {k['arrivals']}",
            preset.engine,
            preset.cost,
            load=k["load"],
            requests=cfg.requests,
            seeds=len(cfg.seeds),
        )

    files: list[Path] = []
    for cell in res.cells:
        k = cell.key
        files += simulation_figures(
            cell.jcts,
            cell.runner_per_seed,
            d,
            context(k),
            cell.oracles,
            prefix=_slug(k["workload"], k["engine"], k["arrivals"], k["load"]) + "_",
        )
    for k in res.curve_cells:
        rows = [
            r for r in res.curves if (r["workload"], r["engine"]) == (k["workload"], k["engine"])
        ]
        name = _slug("tradeoff", k["workload"], k["engine"]) + ".png"
        files.append(tradeoff_curves(rows, k, d / name, context(k)))
    return files
