"""Figures of a run cut into windows of requests in arrival order (learning curves).

Shared by `ssjf bench calibration` and `ssjf bench predictor --online`. Every
function takes, per label (a policy or an arm), one array per seed in ARRIVAL
order, all labels on the same jobs, so the same index picks the same request
in every run. Per-seed values are averaged over seeds; the share of the
oracle's gain compares the seed-mean JCTs, (FCFS - label) / (FCFS - oracle),
and is null where the oracle gains less than
:data:`~ssjf.metrics.compare.MIN_ORACLE_GAIN` there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ssjf.metrics.compare import oracle_gain_fraction
from ssjf.stats import kendall_tau_b, mean, percentile

#: Selects one seed's requests: a slice (a window) or an index/boolean array (a span).
Pick = slice | np.ndarray


def window_bounds(n: int, window: int) -> list[tuple[int, int]]:
    """[start, stop) of each window over ``n`` requests: consecutive, covering all of them."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return [(k, min(k + window, n)) for k in range(0, n, window)]


def jct_figures(
    jcts: Mapping[str, Sequence[np.ndarray]],
    picks: Sequence[Pick],
    *,
    baseline: str = "fcfs",
    oracle: str = "sjf",
) -> dict[str, dict[str, float | None]]:
    """Mean and p99 JCT, share of the oracle's gain and p99 / FCFS's, per label.

    ``picks[s]`` selects seed ``s``'s requests; baseline and oracle are read on
    the same requests as each label.
    """
    means = {k: mean([mean(a[p]) for a, p in zip(v, picks, strict=True)]) for k, v in jcts.items()}
    p99s = {
        k: mean([percentile(a[p], 99) for a, p in zip(v, picks, strict=True)])
        for k, v in jcts.items()
    }
    out: dict[str, dict[str, float | None]] = {}
    for label in jcts:
        share = oracle_gain_fraction(means[label], means[baseline], means[oracle])
        out[label] = {
            "jct_mean": means[label],
            "jct_p99": p99s[label],
            "oracle_gain_share": None if math.isnan(share) else share,
            "p99_vs_fcfs": p99s[label] / p99s[baseline] if p99s[baseline] > 0 else None,
        }
    return out


def span_figures(
    jcts: Mapping[str, Sequence[np.ndarray]],
    start: int,
    stop: int,
    *,
    scales: Mapping[str, Sequence[np.ndarray]] | None = None,
    baseline: str = "fcfs",
    oracle: str = "sjf",
) -> dict[str, dict[str, float | None]]:
    """:func:`jct_figures` of requests ``start:stop``, plus ``held_out_scale``.

    ``scales``: label -> per-seed arrays of the held-out requests' calibration
    scale (NaN for other requests); their mean in the span, else None.
    """
    n_seeds = len(next(iter(jcts.values())))
    picks = [slice(start, stop)] * n_seeds
    out = jct_figures(jcts, picks, baseline=baseline, oracle=oracle)
    for label, row in out.items():
        row["held_out_scale"] = None
        if scales is not None and label in scales:
            vals = np.concatenate([s[start:stop] for s in scales[label]])
            vals = vals[np.isfinite(vals)]
            row["held_out_scale"] = mean(vals) if vals.size else None
    return out


def pooled_tau(
    estimates: Sequence[np.ndarray], lengths: Sequence[np.ndarray], picks: Sequence[Pick]
) -> float | None:
    """Kendall tau-b of the scheduled estimates vs true lengths over the picked requests
    (one mixed queue, every model together), averaged over seeds; None if undefined."""
    taus = [kendall_tau_b(e[p], y[p]) for e, y, p in zip(estimates, lengths, picks, strict=True)]
    taus = [t for t in taus if math.isfinite(t)]
    return mean(taus) if taus else None
