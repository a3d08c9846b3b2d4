"""Rows of `ssjf bench policies`: the runner's per-seed summaries -> exactly the documented fields."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssjf.bench.policies_matrix import BenchPolicy
from ssjf.metrics.compare import oracle_gain_fraction

#: Exactly the fields of a row (and of a per-seed row, plus ``seed``), in table order.
ROW_FIELDS: tuple[str, ...] = (
    "engine",
    "workload",
    "load",
    "arrivals",
    "policy",
    "jct_mean",
    "jct_p50",
    "jct_p99",
    "ttft_p99",
    "max_wait",
    "preemptions",
    "recomputed_tokens",
    "throughput_rps",
    "goodput",
    "oracle_gain_fraction",
    "oracle",
)
#: Row field -> the runner's summary key.
_SUMMARY_KEYS = {
    "jct_mean": "jct_mean",
    "jct_p50": "jct_p50",
    "jct_p99": "jct_p99",
    "ttft_p99": "ttft_p99",
    "max_wait": "max_wait",
    "preemptions": "preemptions",
    "recomputed_tokens": "recomputed_tokens",
    "throughput_rps": "throughput_rps",
    "goodput": "goodput_rps",
}


def cell_rows(
    key: dict[str, Any], policies: Sequence[BenchPolicy], per_seed: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, per-seed rows) with exactly :data:`ROW_FIELDS` (per-seed rows add ``seed``)."""
    by_seed: dict[Any, dict[str, dict[str, Any]]] = {}
    for r in per_seed:
        by_seed.setdefault(r["seed"], {})[r["policy"]] = r

    def figures(mine: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, src in _SUMMARY_KEYS.items():
            vals = np.array([float(r.get(src, math.nan)) for r in mine])
            vals = vals[np.isfinite(vals)]
            out[name] = float(vals.mean()) if vals.size else None
        return out

    def fraction(fig: dict[str, Any], fcfs: dict[str, Any], orc: dict[str, Any]) -> float | None:
        v = [fig["jct_mean"], fcfs["jct_mean"], orc["jct_mean"]]
        if any(x is None for x in v):
            return None
        f = oracle_gain_fraction(*v)
        return f if math.isfinite(f) else None

    seeds = sorted(by_seed)
    rows, seed_rows = [], []
    for bp in policies:
        mean_fig = figures([by_seed[s][bp.text] for s in seeds])
        fcfs = figures([by_seed[s]["fcfs"] for s in seeds])
        orc = figures([by_seed[s][bp.oracle] for s in seeds])
        rows.append(
            {
                **key,
                "policy": bp.text,
                **mean_fig,
                "oracle_gain_fraction": fraction(mean_fig, fcfs, orc),
                "oracle": bp.oracle,
            }
        )
        for s in seeds:
            one = figures([by_seed[s][bp.text]])
            frac = fraction(one, figures([by_seed[s]["fcfs"]]), figures([by_seed[s][bp.oracle]]))
            seed_rows.append(
                {**key, "policy": bp.text, **one, "oracle_gain_fraction": frac}
                | {"oracle": bp.oracle, "seed": s}
            )
    return [{k: r[k] for k in ROW_FIELDS} for r in rows], seed_rows
