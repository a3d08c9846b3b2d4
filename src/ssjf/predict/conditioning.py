"""Conditioning on the target LLM: a shared prompt score plus a per-model affine map.

Most of a response's length is decided by the prompt: on AlpacaEval the mean
length that *other* LLMs give a prompt ranks a model's own lengths with Kendall
tau 0.65. So instead of one noisy regressor per model we

1. take ``y = log1p(tokens)`` and remove each model's mean (``mu_m``),
2. average the residuals of each distinct prompt over every model that answered it
   (a far less noisy target: 40 answers per AlpacaEval prompt), weighting prompts by
   the precision of that mean (``1 / (s2_between + s2_within / n)``),
3. let a family regress that *prompt score* from the text, and
4. map the score to each model with ``y ~ a_m + b_m * score`` fitted on out-of-fold
   scores (honest scale), plus residual quantiles for an interval.

A model never seen in training gets, when ``name_alpha`` is set, a map predicted
from its name (:mod:`ssjf.predict.name_map`: family, size, reasoning, ...); otherwise,
and for ``None``, the global map: the unconditioned estimate. Within one model the order is the order of the shared
score, so per-model Kendall tau is the score's tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.predict.name_map import NameMap

#: Key for records without a model name while fitting (never a real model's name).
NO_MODEL = "\x00none"
#: Shrink each model's slope towards the global one with this many pseudo-records
#: (models with a handful of records should not get wild scales).
_SLOPE_PRIOR = 20.0


def log_lengths(lengths: Sequence[float]) -> np.ndarray:
    """``log1p`` of the lengths (clipped at 0): the space every head regresses in."""
    arr = np.asarray(lengths, dtype=float)
    if arr.ndim != 1:
        raise ValueError("lengths must be one-dimensional")
    if not np.all(np.isfinite(arr)):
        raise ValueError("lengths must be finite")
    return np.log1p(np.clip(arr, 0.0, None))


@dataclass(slots=True)
class PromptTargets:
    """Distinct prompts, their denoised score targets and precision weights."""

    index: np.ndarray  # for each record, the row of its distinct prompt
    first: np.ndarray  # for each distinct prompt, one record that holds it
    target: np.ndarray  # per distinct prompt: mean residual log length
    weight: np.ndarray  # per distinct prompt: precision of that mean (mean 1)
    record: np.ndarray  # per record: its own centred target (what the mean averages)


def normal_scores(y: np.ndarray, models: Sequence[str | None]) -> np.ndarray:
    """Per-model normal scores of ``y``: ``Phi^-1((rank - 0.5) / n)`` with ties averaged.

    A rank target ignores *how much* longer an answer is, only that it is longer,
    which is what Kendall tau rewards; it also tames the heavy tail of one-word
    answers in log space.
    """
    from statistics import NormalDist

    ppf = np.vectorize(NormalDist().inv_cdf)
    names = np.array([NO_MODEL if m is None else m for m in models], dtype=object)
    out = np.empty_like(y, dtype=float)
    for name in set(names.tolist()):
        idx = np.flatnonzero(names == name)
        vals = y[idx]
        order = np.argsort(vals, kind="mergesort")
        ranks = np.empty(len(idx))
        ranks[order] = np.arange(1, len(idx) + 1)
        # average ranks over ties
        _, inv = np.unique(vals, return_inverse=True)
        mean_rank = np.bincount(inv, weights=ranks) / np.bincount(inv)
        out[idx] = ppf((mean_rank[inv] - 0.5) / len(idx))
    return out


TARGETS = ("log", "rank", "mix")


def record_targets(
    y: np.ndarray,
    models: Sequence[str | None],
    *,
    use_models: bool = True,
    target: str = "log",
) -> np.ndarray:
    """Each record's target in the score's space, centred on its model's mean.

    ``target``: ``log`` (model-centred log length), ``rank`` (per-model normal
    scores), or ``mix`` (the mean of the two, each standardised).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    if target != "log":
        z = normal_scores(y, models if use_models else [None] * len(y))
        if target == "mix":
            centred = y - model_means(y, models)[0] if use_models else y - y.mean()
            z = 0.5 * (z + centred / max(float(centred.std()), 1e-9))
        y = z
    return y - model_means(y, models)[0] if use_models else y - y.mean()


def prompt_targets(
    y: np.ndarray,
    prompts: Sequence[str],
    models: Sequence[str | None],
    *,
    use_models: bool = True,
    target: str = "log",
) -> PromptTargets:
    """Group records by prompt text and compute the per-prompt score target.

    The target of a prompt is the mean of its records' :func:`record_targets`.
    """
    resid = record_targets(y, models, use_models=use_models, target=target)
    keys: dict[str, int] = {}
    index = np.empty(len(prompts), dtype=np.int64)
    first: list[int] = []
    for i, p in enumerate(prompts):
        j = keys.setdefault(p, len(keys))
        if j == len(first):
            first.append(i)
        index[i] = j
    n_prompts = len(keys)
    counts = np.bincount(index, minlength=n_prompts).astype(float)
    mean_resid = np.bincount(index, weights=resid, minlength=n_prompts) / counts
    # Precision weights: the mean of n noisy answers is worth more than one answer.
    dev = resid - mean_resid[index]
    multi = counts[index] > 1
    if multi.any():
        dof = float((counts[counts > 1] - 1).sum())
        s2_within = float((dev[multi] ** 2).sum() / max(dof, 1.0))
        s2_between = max(float(np.var(mean_resid)) - float(np.mean(s2_within / counts)), 1e-3)
        weight = 1.0 / (s2_between + s2_within / counts)
        weight /= weight.mean()
    else:
        weight = np.ones(n_prompts)
    return PromptTargets(
        index=index, first=np.asarray(first), target=mean_resid, weight=weight, record=resid
    )


def balance_weights(weight: np.ndarray, groups: np.ndarray, power: float) -> np.ndarray:
    """``weight`` rescaled per group so that the groups' totals move towards equal.

    ``power`` 0: unchanged; 1: every group (collection) sums to the same total, so a
    collection of 5,000 one-answer prompts does not outvote one of 800 well-measured
    ones, nor the reverse. One group: only a constant factor (nothing changes after
    the usual normalisation to mean 1).
    """
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"balance must be in [0, 1], got {power}")
    w = np.asarray(weight, dtype=float)
    if power == 0.0 or len(w) == 0:
        return w.copy()
    names, inv = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    totals = np.bincount(inv, weights=w, minlength=len(names))
    scale = (totals.mean() / np.maximum(totals, 1e-12)) ** power
    return w * scale[inv]


def model_means(y: np.ndarray, models: Sequence[str | None]) -> tuple[np.ndarray, dict[str, float]]:
    """Per-record mean log length of its model, and the per-model means."""
    names = [NO_MODEL if m is None else m for m in models]
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, v in zip(names, y, strict=True):
        sums[name] = sums.get(name, 0.0) + float(v)
        counts[name] = counts.get(name, 0) + 1
    means = {k: sums[k] / counts[k] for k in sums}
    return np.array([means[n] for n in names]), means


@dataclass(slots=True)
class ModelCalibration:
    """Per-model ``log1p(tokens) ~ a + b * score`` with residual quantiles; global fallback."""

    levels: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    global_ab: tuple[float, float] = (0.0, 1.0)
    global_q: tuple[float, ...] = ()
    per_model: dict[str, tuple[float, float, tuple[float, ...]]] = field(default_factory=dict)
    #: log E[exp(residual)] per model ("" = global): turns the log-space centre into
    #: the mean length, the ordering key that minimises mean JCT on a serial engine.
    log_mean_exp: dict[str, float] = field(default_factory=dict)
    #: Maps of unseen models from their names (None: the global map, as before).
    name_map: NameMap | None = None
    _by_name: dict[str, tuple[float, float, tuple[float, ...], float]] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: Per seen model, the variance of its scores over the variance of all (capped at 1):
    #: the weight of its map in the name ridge. Not saved: only fitting reads it.
    _spread: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def fit(
        self,
        y: np.ndarray,
        score: np.ndarray,
        models: Sequence[str | None],
        *,
        use_models: bool,
        name_alpha: float | None = None,
    ) -> ModelCalibration:
        """Fit the maps on out-of-fold scores ``score`` (one per record).

        ``name_alpha``: ridge strength of the name-based map for unseen models (None:
        unseen models get the global map).
        """
        a, b = _affine(y, score)
        self.global_ab = (a, b)
        self.global_q = _resid_quantiles(y - (a + b * score), self.levels)
        self.log_mean_exp = {"": _log_mean_exp(y - (a + b * score))}
        self.per_model = {}
        self._spread = {}
        if not use_models:
            return self
        names = np.array([NO_MODEL if m is None else m for m in models], dtype=object)
        for name in sorted(set(names.tolist())):
            if name == NO_MODEL:
                continue
            mask = names == name
            ma, mb = _affine(y[mask], score[mask], prior=(a, b))
            q = _resid_quantiles(y[mask] - (ma + mb * score[mask]), self.levels)
            self.per_model[str(name)] = (ma, mb, q)
            self.log_mean_exp[str(name)] = _log_mean_exp(y[mask] - (ma + mb * score[mask]))
            # How much of the score range the model's prompts span (1 = as much as all).
            self._spread[str(name)] = min(
                1.0, float(np.var(score[mask])) / max(float(np.var(score)), 1e-12)
            )
        return self.fit_names(name_alpha)

    def fit_names(self, name_alpha: float | None) -> ModelCalibration:
        """(Re)fit only the name-based map of unseen models from the seen models' maps
        (None: none). Cheap: it reads the fitted per-model maps, not the records."""
        self._by_name = {}
        self.name_map = None
        if name_alpha is not None and self.per_model:
            names = list(self.per_model)
            self.name_map = NameMap(alpha=float(name_alpha)).fit(
                names,
                np.array([self._deviation(m) for m in names]),
                np.array([self._spread.get(m, 1.0) for m in names]),
            )
        return self

    def _deviation(self, model: str) -> np.ndarray:
        """A seen model's map minus the global one: ``[da, db, dq..., dlme]``."""
        ma, mb, q = self.per_model[model]
        ga, gb = self.global_ab
        dq = np.subtract(q, self.global_q) if len(q) == len(self.global_q) else np.zeros(0)
        dlme = self.log_mean_exp.get(model, 0.0) - self.log_mean_exp.get("", 0.0)
        return np.concatenate([[ma - ga, mb - gb], dq, [dlme]])

    def entry(self, model: str | None) -> tuple[float, float, tuple[float, ...], float]:
        """``(a, b, residual quantiles, log-mean-exp)`` for ``model``: its own map when
        seen, else one predicted from its name (when fitted), else the global map."""
        glob_lme = self.log_mean_exp.get("", 0.0)
        if model is None:
            return (*self.global_ab, self.global_q, glob_lme)
        seen = self.per_model.get(model)
        if seen is not None:
            return (*seen, self.log_mean_exp.get(model, glob_lme))
        cached = self._by_name.get(model)
        if cached is None:
            dev = self.name_map.predict(model) if self.name_map is not None else None
            if dev is None:  # no name map, or an unfitted one
                return (*self.global_ab, self.global_q, glob_lme)
            ga, gb = self.global_ab
            nq = len(self.global_q)
            q = tuple(sorted(float(v) for v in np.add(self.global_q, dev[2 : 2 + nq])))
            cached = (
                ga + float(dev[0]),
                max(gb + float(dev[1]), 0.0),
                q,
                glob_lme + float(dev[-1]),
            )
            if len(self._by_name) < 10_000:  # bounded: names come from requests
                self._by_name[model] = cached
        return cached

    def apply(self, score: np.ndarray, models: Sequence[str | None]) -> tuple[np.ndarray, list]:
        """Predicted log lengths and, per record, the residual quantiles to add."""
        out = np.empty(len(score))
        quants: list[tuple[float, ...]] = []
        for i, (s, m) in enumerate(zip(score, models, strict=True)):
            a, b, q, _ = self.entry(m)
            out[i] = a + b * s
            quants.append(q)
        return out, quants

    def mean_shift(self, models: Sequence[str | None]) -> np.ndarray:
        """Per record, what to add to ``a + b*score`` to get log1p of the mean length."""
        return np.array([self.entry(m)[3] for m in models])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (saved next to the weights)."""
        return {
            "levels": list(self.levels),
            "global": [*self.global_ab, list(self.global_q)],
            "models": {k: [a, b, list(q)] for k, (a, b, q) in self.per_model.items()},
            "log_mean_exp": self.log_mean_exp,
            **({"name_map": self.name_map.to_json()} if self.name_map is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelCalibration:
        """Inverse of :meth:`to_json`."""
        ga, gb, gq = data["global"]
        return cls(
            levels=tuple(float(v) for v in data["levels"]),
            global_ab=(float(ga), float(gb)),
            global_q=tuple(float(v) for v in gq),
            log_mean_exp={k: float(v) for k, v in data.get("log_mean_exp", {}).items()},
            per_model={
                k: (float(a), float(b), tuple(float(v) for v in q))
                for k, (a, b, q) in data["models"].items()
            },
            # Saves from before the name-based map have none: unseen models get the global map.
            name_map=NameMap.from_json(data["name_map"]) if "name_map" in data else None,
        )


def _affine(
    y: np.ndarray, x: np.ndarray, prior: tuple[float, float] | None = None
) -> tuple[float, float]:
    """Least-squares ``y ~ a + b x``; slope shrunk towards ``prior`` (or 1 when x is constant)."""
    xm, ym = float(x.mean()), float(y.mean())
    sxx = float(((x - xm) ** 2).sum())
    sxy = float(((x - xm) * (y - ym)).sum())
    prior_b = 1.0 if prior is None else prior[1]
    lam = _SLOPE_PRIOR * (sxx / max(len(x), 1)) if prior is not None else 1e-9
    b = (sxy + lam * prior_b) / (sxx + lam) if sxx + lam > 0 else prior_b
    b = max(b, 0.0)  # a longer typical prompt never means a shorter answer
    return ym - b * xm, b


def _log_mean_exp(resid: np.ndarray) -> float:
    if resid.size == 0:
        return 0.0
    top = float(resid.max())
    return top + float(np.log(np.mean(np.exp(resid - top))))


def _resid_quantiles(resid: np.ndarray, levels: tuple[float, ...]) -> tuple[float, ...]:
    if resid.size == 0:
        return tuple(0.0 for _ in levels)
    return tuple(float(v) for v in np.quantile(resid, levels))
