"""Leave-one-group-out inner cross-validation: choices that must generalise, made on training data.

The generalisation splits of ``ssjf bench predictor`` test on collections and on
generator families the predictor never saw. Choosing a family or a parameter by
those test scores would overfit them, so choices are made here, on data those
splits train on, with the same kind of hold-out:

* ``collection``: leave one *training* collection out at a time (alpaca_eval and
  flask only on their training side of the bench's 25% prompt-id split; alpaca5k,
  codealpaca2k whole), train on the rest with the held-out
  collection's texts removed (:func:`ssjf.predict.split.drop_prompts`), score the
  held-out collection. sharegpt, zeroeval and gpteacher are the cross-collection
  test targets, routellm_gsm8k holds zeroeval's GSM8K questions: never loaded. The
  claude and gpt4 generator families (the unseen-model split's) are left out of
  every grouping.
* ``generator-family``: on the training side of alpaca_eval + flask, leave one
  generator family out (llama, mistral, vicuna, tulu, ...; never claude or gpt4,
  the bench's held-out families, whose records are left out of training too, as in
  the unseen-model split), training also without one fold of prompts (grouped by
  text across datasets); score that family's records on those prompts.

Each fold reports ``tau_mean`` (mean over generators of Kendall tau-b of the
model's score), ``tau_pooled`` (the predicted points of all the fold's records
against their lengths: the order a mixed queue sees) and ``mae``.

    python -m ssjf.bench.inner_cv_groups --groups collection --config tfidf
    python -m ssjf.bench.inner_cv_groups --groups generator-family \\
        --name-alphas none,1,3,10 --config tfidf-embed --config tfidf
    python -m ssjf.bench.inner_cv_groups --groups collection --cap 1000 \\
        --train-on alpaca_eval,flask --config tfidf      # the legacy training mix
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssjf.bench.inner_cv import parse_config, source, tau_mean
from ssjf.predict.base import make_predictor
from ssjf.predict.data import LengthData, load_prompt_dataset
from ssjf.predict.model_names import parse_model_name
from ssjf.predict.scored import ScorePredictor
from ssjf.predict.split import DEFAULT_SEED, drop_prompts, prompt_key, split_by_prompt
from ssjf.stats import kendall_tau_b

#: Collections the bench splits by prompt id (only their training side is read here).
SPLIT_COLLECTIONS = ("alpaca_eval", "flask")
#: Every collection an inner fold may hold out or train on.
TRAIN_COLLECTIONS = (*SPLIT_COLLECTIONS, "alpaca5k", "codealpaca2k")
#: The cross-collection test targets and their siblings (routellm_gsm8k holds zeroeval's
#: GSM8K questions: ssjf.bench.predictor_splits.SIBLINGS): never read by an inner CV.
FORBIDDEN = ("sharegpt", "zeroeval", "gpteacher", "routellm_gsm8k")
#: The bench's held-out generator families (unseen-model split): never trained on nor scored.
HELD_FAMILIES = ("claude", "gpt4")
GROUPINGS = ("collection", "generator-family")


def load_training(
    collections: Sequence[str] = TRAIN_COLLECTIONS, cap: int | None = None
) -> LengthData:
    """The records an inner CV may read: training sides only, no test target, no test text.

    ``cap``: keep only the first ``cap`` prompt ids (file order) of each collection that
    the bench does not split (bounds the embedding work on a busy machine).
    """
    bad = sorted(set(collections) & set(FORBIDDEN))
    if bad:
        raise ValueError(f"{bad} are cross-collection test targets; an inner CV never reads them")
    unknown = sorted(set(collections) - set(TRAIN_COLLECTIONS))
    if unknown:
        raise ValueError(f"unknown training collection(s) {unknown} (known: {TRAIN_COLLECTIONS})")
    data, held = LengthData(), []
    for name in SPLIT_COLLECTIONS:  # always split, so no held-out text enters via another set
        train, test = split_by_prompt(load_prompt_dataset(name), 0.25, DEFAULT_SEED)
        held += test.prompts
        if name in collections:
            data.extend(train)
    for name in collections:
        if name not in SPLIT_COLLECTIONS:
            whole = load_prompt_dataset(name)
            if cap is not None:
                keep = set(list(dict.fromkeys(whole.prompt_ids))[:cap])
                whole = whole.subset(i for i, p in enumerate(whole.prompt_ids) if p in keep)
            data.extend(whole)
    # The bench's held-out generator families are never trained on nor scored.
    from ssjf.bench.policies_workloads import in_families

    data = data.subset(i for i, m in enumerate(data.models) if not in_families(m, HELD_FAMILIES))
    return drop_prompts(data, held)[0]


def family_of(model: str | None) -> str:
    """A generator's family for grouping (``other`` when its name says none)."""
    from ssjf.bench.policies_workloads import in_families

    if in_families(model, HELD_FAMILIES):
        return next(f for f in HELD_FAMILIES if in_families(model, (f,)))
    return parse_model_name(model).family or "other"


def _score_fold(pred: Any, data: LengthData, idx: np.ndarray) -> dict[str, float]:
    prompts = [data.prompts[i] for i in idx]
    mods = [data.models[i] for i in idx]
    y = np.asarray(data.lengths, dtype=float)[idx]
    points = pred.predict_points(prompts, mods)
    return {
        "tau_mean": tau_mean(pred.model_scores(prompts, mods), y, np.array(mods, dtype=object)),
        "tau_pooled": float(kendall_tau_b(points, y)),
        "mae": float(np.mean(np.abs(points - y))),
        "records": float(len(idx)),
        "models": float(len(set(mods))),
    }


def _fit_rows(family: str, params: dict[str, Any], data: LengthData, rows: np.ndarray) -> Any:
    """A score family fitted on ``rows``, with each record's collection (for ``balance``)."""
    pred = make_predictor(family, **params)
    if not isinstance(pred, ScorePredictor):
        raise TypeError(f"{family} is not a score family (no prompt score to validate)")
    sub = data.subset(rows.tolist())
    pred.fit(sub.prompts, [float(v) for v in sub.lengths], sub.models, datasets=sub.datasets)
    return pred


def collection_folds(data: LengthData, train_on: Sequence[str] | None = None) -> list[tuple]:
    """``(name, train rows, test rows)`` per held-out collection (texts of the held-out set
    dropped from training; ``train_on`` limits the training collections)."""
    src = source(data)
    keys = np.array([prompt_key(p) for p in data.prompts], dtype=object)
    allowed = np.isin(src, list(train_on)) if train_on else np.ones(len(src), dtype=bool)
    folds = []
    for name in sorted(set(src.tolist())):
        test = src == name
        train = allowed & ~test & ~np.isin(keys, list(set(keys[test].tolist())))
        folds.append((name, np.flatnonzero(train), np.flatnonzero(test)))
    return folds


def family_folds(
    data: LengthData, k: int = 4, seed: int = 7, families: Sequence[str] | None = None
) -> list[tuple]:
    """``(family, train rows, test rows)``: family ``i`` is scored on prompt fold ``i % k``
    (prompts grouped by text across datasets) and left out of training entirely."""
    src = source(data)
    fams = np.array([family_of(m) for m in data.models], dtype=object)
    keys = np.array([prompt_key(p) for p in data.prompts], dtype=object)
    split = np.isin(src, SPLIT_COLLECTIONS)
    ids = sorted(set(keys[split].tolist()))
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[i]: f % k for f, i in enumerate(order)}
    fold = np.array([fold_of.get(key, -1) for key in keys])
    if families is None:  # every family with two or more generators on the split sets
        counts: dict[str, set[str]] = {}
        for f, m, s in zip(fams, data.models, split, strict=True):
            if s and f not in HELD_FAMILIES and f != "other":
                counts.setdefault(str(f), set()).add(str(m))
        families = sorted(f for f, ms in counts.items() if len(ms) >= 2)
    bad = sorted(set(families) & set(HELD_FAMILIES))
    if bad:
        raise ValueError(f"{bad} are the bench's held-out families; an inner CV never scores them")
    held = np.isin(fams, HELD_FAMILIES)
    out = []
    for i, fam in enumerate(families):
        in_fold = fold == i % k
        train = ~held & (fams != fam) & ~in_fold
        test = split & (fams == fam) & in_fold
        out.append((fam, np.flatnonzero(train), np.flatnonzero(test)))
    return out


def run(
    family: str,
    params: dict[str, Any],
    data: LengthData,
    folds: list[tuple],
    name_alphas: Sequence[float | None] = (),
) -> list[dict[str, Any]]:
    """Per-fold and mean ``tau_mean``, ``tau_pooled``, ``mae`` of ``family(**params)``.

    ``name_alphas``: also score each fitted predictor with its name-based map of unseen
    models refitted at these strengths (None: none), one result each; the prompt score
    and the seen models' maps do not depend on it, so one fit serves all.
    """
    t0 = time.perf_counter()
    variants: list[float | None] = list(name_alphas) or [params.get("name_alpha")]
    per_fold: list[dict[str, dict[str, float]]] = [{} for _ in variants]
    for name, train, test in folds:
        if len(test) == 0:
            continue
        pred = _fit_rows(family, params, data, train)
        for k, alpha in enumerate(variants):
            if name_alphas:
                pred.calibration.fit_names(alpha)
            per_fold[k][name] = _score_fold(pred, data, test)
    out = []
    for alpha, folds_k in zip(variants, per_fold, strict=True):
        mean = {
            m: float(np.mean([f[m] for f in folds_k.values()]))
            for m in ("tau_mean", "tau_pooled", "mae")
        }
        out.append(
            {
                "family": family,
                "params": {**params, "name_alpha": alpha} if name_alphas else params,
                **mean,
                "folds": folds_k,
                "wall_s": time.perf_counter() - t0,
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: per-fold lines and the mean per ``--config``, optional JSON."""
    ap = argparse.ArgumentParser(prog="python -m ssjf.bench.inner_cv_groups")
    ap.add_argument("--config", action="append", required=True, help="family[:k=v,...]")
    ap.add_argument("--groups", choices=GROUPINGS, default="collection")
    ap.add_argument(
        "--train-on",
        default=None,
        help="collection groups: train only on these collections (comma list; default all)",
    )
    ap.add_argument("--families", default=None, help="generator-family groups (comma list)")
    ap.add_argument("--folds", type=int, default=4, help="prompt folds (generator-family)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--cap", type=int, default=None, help="collection groups: first N prompts of unsplit sets"
    )
    ap.add_argument(
        "--name-alphas",
        default=None,
        help="also score each fit with these name-map strengths (comma list; 'none' = off)",
    )
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.groups == "collection":
        data = load_training(cap=a.cap)
        train_on = a.train_on.split(",") if a.train_on else None
        folds = collection_folds(data, train_on)
    else:
        data = load_training(SPLIT_COLLECTIONS)
        fams = a.families.split(",") if a.families else None
        folds = family_folds(data, a.folds, a.seed, fams)
    alphas = (
        [None if v == "none" else float(v) for v in a.name_alphas.split(",")]
        if a.name_alphas
        else []
    )
    out = []
    for spec in a.config:
        family, params = parse_config(spec)
        for r in run(family, params, data, folds, alphas):
            label = f"{spec} name_alpha={r['params'].get('name_alpha')}" if alphas else spec
            for name, f in r["folds"].items():
                print(
                    f"  {label} [{name}] tau_mean {f['tau_mean']:.4f} pooled "
                    f"{f['tau_pooled']:.4f} MAE {f['mae']:.1f} ({int(f['records'])} records, "
                    f"{int(f['models'])} models)",
                    flush=True,
                )
            print(
                f"{label} ({a.groups}{', train on ' + a.train_on if a.train_on else ''}"
                f"{f', cap {a.cap}' if a.cap else ''}): "
                f"tau_mean {r['tau_mean']:.4f} pooled {r['tau_pooled']:.4f} MAE {r['mae']:.1f} "
                f"({r['wall_s']:.0f} s)",
                flush=True,
            )
            out.append({**r, "groups": a.groups, "train_on": a.train_on, "cap": a.cap})
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
