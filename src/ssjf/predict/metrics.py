"""Evaluation that speaks scheduling: rank agreement first, then error, buckets, intervals.

SJF needs only the order of requests, so Kendall tau-b between predicted and true
lengths (:func:`ssjf.stats.kendall_tau_b`) is the headline; it is computed per
model and averaged over models (a scheduler orders requests of one deployed model). MAE and median relative error
say how far off the numbers are, bucket accuracy compares with the paper's
classifiers, and interval coverage checks quantile predictors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.stats import kendall_tau_b

#: The SSJF paper's 5-class upper edges (tokens), used when no edges are given.
PAPER_BUCKET_EDGES: tuple[float, ...] = (42, 141, 294, 503, math.inf)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho (Pearson correlation of average ranks); NaN when undefined."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2:
        return math.nan
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else math.nan


def bucket_of(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index per value: bucket k holds ``edges[k-1] < v <= edges[k]``."""
    return np.searchsorted(np.asarray(edges, dtype=float), values, side="left")


def bucket_accuracy(pred: np.ndarray, true: np.ndarray, edges: Sequence[float]) -> float:
    """Fraction of records whose predicted length falls in the true length's bucket."""
    return float(np.mean(bucket_of(pred, edges) == bucket_of(true, edges)))


def coverage(
    estimates: Sequence[LengthEstimate], true: np.ndarray, lo: float = 0.1, hi: float = 0.9
) -> float | None:
    """Fraction of true lengths inside ``[q(lo), q(hi)]``; None without quantiles."""
    if not estimates or not all(e.quantiles for e in estimates):
        return None
    inside = [e.quantile(lo) <= t <= e.quantile(hi) for e, t in zip(estimates, true, strict=True)]
    return float(np.mean(inside))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def length_metrics(
    estimates: Sequence[LengthEstimate],
    true: Sequence[float],
    models: Sequence[str | None] | None = None,
    *,
    bucket_edges: Sequence[float] = PAPER_BUCKET_EDGES,
    min_per_model: int = 5,
) -> dict[str, Any]:
    """All metrics of predictions against truth; ``tau_mean`` (mean over models) is the headline.

    Models with fewer than ``min_per_model`` records are left out of the per-model
    means (a tau over 3 points is noise); without model names the "mean over
    models" is the overall value.
    """
    y = np.asarray(true, dtype=float)
    p = np.array([e.point for e in estimates], dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} estimates for {y.size} true lengths")
    out: dict[str, Any] = {
        "n": int(y.size),
        "tau": kendall_tau_b(p, y),
        "spearman": spearman(p, y),
        "mae": float(np.mean(np.abs(p - y))) if y.size else math.nan,
        "median_rel_error": float(np.median(np.abs(p - y) / np.maximum(y, 1.0)))
        if y.size
        else math.nan,
        "bucket_edges": [e if math.isfinite(e) else "inf" for e in bucket_edges],
        "bucket_accuracy": bucket_accuracy(p, y, bucket_edges) if y.size else math.nan,
        "coverage_80": coverage(estimates, y, 0.1, 0.9),
    }
    per_model: dict[str, dict[str, float]] = {}
    if models is not None:
        names = np.array(["" if m is None else m for m in models], dtype=object)
        for name in sorted(set(names.tolist())):
            mask = names == name
            if not name or mask.sum() < min_per_model:
                continue
            per_model[str(name)] = {
                "n": int(mask.sum()),
                "tau": kendall_tau_b(p[mask], y[mask]),
                "spearman": spearman(p[mask], y[mask]),
                "mae": float(np.mean(np.abs(p[mask] - y[mask]))),
            }
    out["per_model"] = per_model
    if per_model:
        out["tau_mean"] = _nanmean([v["tau"] for v in per_model.values()])
        out["spearman_mean"] = _nanmean([v["spearman"] for v in per_model.values()])
    else:
        out["tau_mean"], out["spearman_mean"] = out["tau"], out["spearman"]
    return out
