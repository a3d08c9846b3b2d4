"""The cross-model reference: how well the prompt alone can rank one generator's lengths.

For each record, the mean log length that the *other* generators gave the same
prompt is not a predictor (it reads other models' answers) but the ceiling of
what the prompt text can tell; its Kendall tau-b against the true length, per
generator and averaged, is the reference the bench's predictors are compared to.
"""

from __future__ import annotations

import math

import numpy as np

from ssjf.predict.records import LengthData
from ssjf.stats import kendall_tau_b


def other_models_mean(test: LengthData, pool: LengthData | None = None) -> np.ndarray:
    """For each ``test`` record, the mean log length that the *other* generators gave its
    prompt in ``pool`` (default ``test``); NaN where no other generator answered it."""
    src = test if pool is None else pool
    by_pid: dict[str, list[float]] = {}  # prompt id -> [sum of log lengths, count]
    by_pair: dict[tuple[str, str | None], list[float]] = {}
    for pid, model, n in zip(src.prompt_ids, src.models, src.lengths, strict=True):
        v = math.log1p(n)
        for acc in (
            by_pid.setdefault(pid, [0.0, 0.0]),
            by_pair.setdefault((pid, model), [0.0, 0.0]),
        ):
            acc[0] += v
            acc[1] += 1
    out = np.full(len(test), math.nan)
    for i, (pid, model) in enumerate(zip(test.prompt_ids, test.models, strict=True)):
        tot, own = by_pid.get(pid, [0.0, 0.0]), by_pair.get((pid, model), [0.0, 0.0])
        if tot[1] > own[1]:
            out[i] = (tot[0] - own[0]) / (tot[1] - own[1])
    return out


def cross_model_reference(
    test: LengthData,
    pool: LengthData | None = None,
    *,
    others: np.ndarray | None = None,
    min_per_model: int = 5,
) -> float | None:
    """Mean over ``test``'s generators of Kendall tau-b between :func:`other_models_mean`
    and the true log length (the text's ceiling); None where no prompt has another generator.

    Generators with fewer than ``min_per_model`` such records are left out, as in
    :func:`~ssjf.predict.metrics.length_metrics`.
    """
    ref = other_models_mean(test, pool) if others is None else others
    y = np.log1p(np.asarray(test.lengths, dtype=float))
    models = np.array(test.models, dtype=object)
    taus = []
    for m in test.model_names:
        mask = (models == m) & np.isfinite(ref)
        if mask.sum() >= min_per_model:
            taus.append(kendall_tau_b(ref[mask], y[mask]))
    finite = [t for t in taus if math.isfinite(t)]
    return float(np.mean(finite)) if finite else None
