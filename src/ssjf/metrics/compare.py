"""Policies against FCFS and against the oracle, and aggregation over seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ssjf.stats import relative_change

#: Figures compared against FCFS (relative change, negative = better for latencies).
COMPARED = ("jct_mean", "jct_p99", "queue_mean", "ttft_mean")

#: Smallest gain of the oracle over FCFS (a share of FCFS's mean JCT) worth dividing by.
#: Below it (light load: little queueing, so little for any ordering to win) the
#: oracle-gain fraction is noise over a near-zero denominator (the issue that set it:
#: "oracle gain -116% ± 61" where the oracle gained about 1%), so it is reported as
#: missing instead. Every place that computes the fraction goes through
#: :func:`oracle_gain_fraction`, so this is the one threshold.
MIN_ORACLE_GAIN = 0.05


def oracle_gain_fraction(value: float, fcfs: float, oracle: float) -> float:
    """Share of the oracle's improvement a policy captures: (fcfs - value) / (fcfs - oracle).

    1 = as good as the oracle, 0 = no better than FCFS, < 0 = worse than FCFS;
    nan when the oracle beats FCFS by less than :data:`MIN_ORACLE_GAIN` of FCFS's
    figure (no gain worth sharing).
    """
    gain = fcfs - oracle
    if not (math.isfinite(gain) and math.isfinite(value)):
        return math.nan
    if gain <= 0 or gain < MIN_ORACLE_GAIN * abs(fcfs):
        return math.nan
    return (fcfs - value) / gain


def add_comparisons(
    summaries: Mapping[str, dict[str, float]], baseline: str = "fcfs", oracle: str = "sjf"
) -> None:
    """Add ``<figure>_change_vs_fcfs`` and ``oracle_gain_fraction`` to each summary in place.

    All summaries must come from the same engine, workload and seed; missing
    baseline/oracle leave the corresponding figures out.
    """
    base = summaries.get(baseline)
    orc = summaries.get(oracle)
    for summ in summaries.values():
        if base is not None:
            for key in COMPARED:
                summ[f"{key}_change_vs_fcfs"] = relative_change(summ[key], base[key])
        if base is not None and orc is not None:
            summ["oracle_gain_fraction"] = oracle_gain_fraction(
                summ["jct_mean"], base["jct_mean"], orc["jct_mean"]
            )


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of every figure over seeds, plus ``<figure>_std`` (sample std, 0 for one seed).

    Ratios (changes vs FCFS, oracle gain) are computed per seed first and then
    averaged, so the spread reflects seed-to-seed variation of the ratio itself.
    """
    if not per_seed:
        return {}
    keys: list[str] = []
    for s in per_seed:
        keys.extend(k for k in s if k not in keys)
    out: dict[str, float] = {"seeds": float(len(per_seed))}
    for key in keys:
        vals = np.asarray([s.get(key, math.nan) for s in per_seed], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        out[key] = float(finite.mean()) if finite.size else math.nan
        out[f"{key}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return out
