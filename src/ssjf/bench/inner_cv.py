"""Inner cross-validation for predictor choices, inside the bench's training portion only.

``ssjf bench predictor`` holds out 25% of the alpaca_eval and flask prompt ids;
choosing features or parameters by that held-out score would overfit it. This
module splits the *training* alpaca_eval/flask prompts into k folds grouped by
prompt id (the held-out records are never loaded), trains on k-1 folds plus all of
sharegpt, and scores each record's model score (the shared prompt score plus the
model's residual head, if any) on the held fold: the mean over generators of
Kendall tau-b per source, averaged over folds. Within one generator the order of
the points is the order of that score, so this is the bench's headline metric.

    python -m ssjf.bench.inner_cv --config tfidf-embed --config tfidf-embed:weight_power=6
    python -m ssjf.bench.inner_cv --config tfidf-embed:residual_alpha=2
    python -m ssjf.bench.inner_cv --config tfidf-embed+hgb   # + a boosted head, blends
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ssjf.bench.predictor import HELD_OUT, bench_data
from ssjf.predict.base import make_predictor
from ssjf.predict.data import LengthData
from ssjf.predict.scored import ScorePredictor
from ssjf.stats import kendall_tau_b

#: Blend weights of the boosted head tried by :func:`run_head` (0 = the ridge alone).
HEAD_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def source(data: LengthData) -> np.ndarray:
    """The source dataset of each record (``alpaca_eval/koala`` -> ``alpaca_eval``)."""
    return np.array([d.split("/", 1)[0] for d in data.datasets], dtype=object)


def inner_folds(data: LengthData, k: int, seed: int) -> list[np.ndarray]:
    """Record masks of ``k`` validation folds over the alpaca_eval/flask prompt ids, grouped."""
    pids = np.array(data.prompt_ids, dtype=object)
    ids = sorted(set(pids[np.isin(source(data), HELD_OUT)].tolist()))
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[i]: f % k for f, i in enumerate(order)}
    fold = np.array([fold_of.get(p, -1) for p in pids])
    return [fold == f for f in range(k)]


def tau_mean(scores: np.ndarray, lengths: np.ndarray, models: np.ndarray) -> float:
    """Mean over generators of Kendall tau-b (the bench's headline)."""
    taus = [kendall_tau_b(scores[models == m], lengths[models == m]) for m in np.unique(models)]
    return float(np.nanmean(taus))


def _fit(family: str, params: dict[str, Any], data: LengthData, rows: np.ndarray) -> ScorePredictor:
    pred = make_predictor(family, **params)
    if not isinstance(pred, ScorePredictor):
        raise TypeError(f"{family} is not a score family (no prompt score to validate)")
    lengths = [float(data.lengths[i]) for i in rows]
    pred.fit([data.prompts[i] for i in rows], lengths, [data.models[i] for i in rows])
    return pred


def run(
    family: str, params: dict[str, Any], data: LengthData, k: int = 4, seed: int = 7
) -> dict[str, Any]:
    """Per-source mean tau of ``family(**params)`` over ``k`` inner folds (and per fold)."""
    ds, y = source(data), np.asarray(data.lengths, dtype=float)
    mods = np.array(data.models, dtype=object)
    res: dict[str, list[float]] = {d: [] for d in HELD_OUT}
    mae: dict[str, list[float]] = {d: [] for d in HELD_OUT}
    t0 = time.perf_counter()
    for val in inner_folds(data, k, seed):
        pred = _fit(family, params, data, np.flatnonzero(~val))
        for d in HELD_OUT:
            idx = np.flatnonzero(val & (ds == d))
            prompts = [data.prompts[i] for i in idx]
            res[d].append(
                tau_mean(pred.model_scores(prompts, mods[idx].tolist()), y[idx], mods[idx])
            )
            points = pred.predict_points(prompts, mods[idx].tolist())
            mae[d].append(float(np.mean(np.abs(points - y[idx]))))
    return {
        "family": family,
        "params": params,
        **{d: float(np.mean(v)) for d, v in res.items()},
        **{f"{d}_mae": float(np.mean(v)) for d, v in mae.items()},
        **{f"{d}_folds": v for d, v in res.items()},
        "wall_s": time.perf_counter() - t0,
    }


def head_features(score: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
    """What the boosted head reads: the ridge score, length features, explicit cues."""
    from ssjf.predict.baselines import length_features
    from ssjf.predict.cues import prompt_cues

    return np.column_stack([score, length_features(prompts), prompt_cues(prompts)])


def run_head(
    family: str, params: dict[str, Any], data: LengthData, k: int = 4, seed: int = 7
) -> dict[str, Any]:
    """Ridge score blended with a gradient-boosted head fitted on out-of-fold scores."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from ssjf.predict.conditioning import log_lengths, prompt_targets

    ds, y = source(data), np.asarray(data.lengths, dtype=float)
    mods = np.array(data.models, dtype=object)
    res = {d: {w: cast(list[float], []) for w in HEAD_WEIGHTS} for d in HELD_OUT}
    t0 = time.perf_counter()
    for val in inner_folds(data, k, seed):
        rows = np.flatnonzero(~val)
        pred = _fit(family, params, data, rows)
        prompts = [data.prompts[i] for i in rows]
        tg = prompt_targets(
            log_lengths(y[rows].tolist()),
            prompts,
            [data.models[i] for i in rows],
            target=str(pred.params["target"]),
        )
        distinct = [prompts[i] for i in tg.first]
        weight = tg.weight ** float(pred.params["weight_power"])
        weight /= weight.mean()
        oof = pred._out_of_fold(pred._features(distinct), tg.target, weight)
        # Small, strongly regularised trees: ~5,000 distinct prompts, 15 features.
        hgb = HistGradientBoostingRegressor(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            random_state=0,
        )
        hgb.fit(head_features(oof, distinct), tg.target, sample_weight=weight)
        for d in HELD_OUT:
            idx = np.flatnonzero(val & (ds == d))
            vp = [data.prompts[i] for i in idx]
            s = pred.scores(vp)
            h = hgb.predict(head_features(s, vp))
            for w in HEAD_WEIGHTS:
                res[d][w].append(tau_mean((1 - w) * s + w * h, y[idx], mods[idx]))
    out: dict[str, Any] = {"family": family, "params": params, "head": "hgb"}
    for d in HELD_OUT:
        out.update({f"{d}@{w}": float(np.mean(v)) for w, v in res[d].items()})
    out["wall_s"] = time.perf_counter() - t0
    return out


def parse_config(spec: str) -> tuple[str, dict[str, Any]]:
    """``family[:key=value,...]`` (values parsed as JSON when they look like numbers, lists or null)."""
    family, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for kv in filter(None, rest.split(",")):
        key, _, val = kv.partition("=")
        params[key] = json.loads(val) if val[:1] in "-0123456789[{" or val == "null" else val
    return family, params


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: one line per ``--config``, optional JSON of every result."""
    ap = argparse.ArgumentParser(prog="python -m ssjf.bench.inner_cv")
    ap.add_argument("--config", action="append", required=True, help="family[+hgb][:k=v,...]")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--drop", action="append", default=[], help="train without this source")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    train = bench_data().train
    if a.drop:
        train = train.subset(np.flatnonzero(~np.isin(source(train), a.drop)).tolist())
    out = []
    for spec in a.config:
        family, params = parse_config(spec)
        if family.endswith("+hgb"):
            r = run_head(family.removesuffix("+hgb"), params, train, a.folds, a.seed)
            print(spec, {k: round(v, 4) for k, v in r.items() if "@" in k}, flush=True)
        else:
            r = run(family, params, train, a.folds, a.seed)
            print(
                f"{spec}: tau alpaca {r['alpaca_eval']:.4f} flask {r['flask']:.4f}; "
                f"MAE alpaca {r['alpaca_eval_mae']:.1f} flask {r['flask_mae']:.1f}",
                flush=True,
            )
        out.append(r)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
