"""Rows of `ssjf bench predictor --splits`: each family on data it cannot have seen.

A family trains once per training of :mod:`ssjf.bench.predictor_splits` and is
scored on each of its test collections (and on zeroeval's and gpteacher's tasks,
from the same predictions). A row holds:

- ``tau_mean``: Kendall tau-b per generator, averaged (a deployment orders one
  model's requests; :func:`~ssjf.predict.metrics.length_metrics`);
- ``tau_pooled``: Kendall tau-b over all the row's records (the order a mixed
  queue of several models sees);
- ``mae``, ``coverage`` (true length inside the 10-90% interval; null without
  quantiles);
- ``cross_model_ref``: :func:`~ssjf.bench.cross_model.cross_model_reference` on
  every generator of the test prompts in the collection; null where no prompt
  has two generators (sharegpt, gpteacher).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssjf.bench.cross_model import cross_model_reference, other_models_mean
from ssjf.bench.predictor_splits import (
    DEFAULT_RECIPE,
    HELD_OUT_FAMILIES,
    LEAKAGE_RULE,
    RECIPE_DEFINITIONS,
    SPLIT_DEFINITIONS,
    SPLITS,
    Training,
    build_trainings,
    check_recipe,
    load_collections,
    needed_collections,
)
from ssjf.estimate import LengthEstimate
from ssjf.predict.records import LengthData
from ssjf.predict.split import DEFAULT_SEED

#: The keys every row has (the issue's schema); extras follow.
ROW_KEYS: tuple[str, ...] = (
    "split",
    "dataset",
    "family",
    "tau_mean",
    "tau_pooled",
    "mae",
    "coverage",
    "cross_model_ref",
)
#: Collections also scored per sub-dataset (``zeroeval/gsm``, ``gpteacher/codegen``, ...).
PER_TASK: tuple[str, ...] = ("zeroeval", "gpteacher")
#: Distinct test prompts timed for latency (the first test set's, in order).
LATENCY_PROMPTS = 1024

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class GeneralizationConfig:
    """What to run; defaults are the documented benchmark."""

    splits: tuple[str, ...] = SPLITS
    recipe: str = DEFAULT_RECIPE
    families: tuple[str, ...] | None = None  # None: the bench's default families
    test_frac: float = 0.25
    seed: int = DEFAULT_SEED
    held_out_families: tuple[str, ...] = HELD_OUT_FAMILIES
    latency_single: int = 200
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-family overrides


@dataclass(slots=True)
class Scored:
    """A test set and what every family's rows on it share (the reference)."""

    dataset: str
    test: LengthData
    index: np.ndarray  # positions in the collection's test records
    cross_model_ref: float | None


def scored_sets(name: str, test: LengthData, pool: LengthData) -> list[Scored]:
    """The collection, then its tasks when it is in :data:`PER_TASK` (and has several)."""
    others = other_models_mean(test, pool)
    groups: dict[str, list[int]] = {name: list(range(len(test)))}
    tasks = sorted(set(test.datasets))
    if name in PER_TASK and len(tasks) > 1:
        for task in tasks:
            groups[task] = [i for i, d in enumerate(test.datasets) if d == task]
    out = []
    for label, idx in groups.items():
        sub = test.subset(idx)
        ix = np.asarray(idx, dtype=int)
        out.append(Scored(label, sub, ix, cross_model_reference(sub, others=others[ix])))
    return out


def score_row(
    split: str, family: str, scored: Scored, ests: Sequence[LengthEstimate]
) -> dict[str, Any]:
    """One row: the issue's keys, then ``n_test`` and ``generators``."""
    from ssjf.predict.metrics import length_metrics

    te = scored.test
    rep = length_metrics(ests, te.lengths, te.models)
    return {
        "split": split,
        "dataset": scored.dataset,
        "family": family,
        "tau_mean": rep["tau_mean"],
        "tau_pooled": rep["tau"],
        "mae": rep["mae"],
        "coverage": rep["coverage_80"],
        "cross_model_ref": scored.cross_model_ref,
        "n_test": rep["n"],
        "generators": len(te.model_names),
        "ref_fraction": ref_fraction(rep["tau_mean"], scored.cross_model_ref),
    }


def ref_fraction(tau: float, ref: float | None) -> float | None:
    """``tau / ref``: the share of what the prompt alone can tell (None without a reference)."""
    if ref is None or not math.isfinite(tau) or ref <= 0:
        return None
    return tau / ref


def _family_rows(
    family: str,
    training: Training,
    sets: dict[str, list[Scored]],
    cfg: GeneralizationConfig,
    latency: dict[str, dict[str, float]],
) -> list[dict[str, Any]]:
    """Train ``family`` on ``training`` once and score it on every test set."""
    from ssjf.predict.base import available_predictors, make_predictor
    from ssjf.predict.latency import measure_latency

    cls = available_predictors()[family]
    predictor = make_predictor(family, **{**cls.bench_params, **cfg.params.get(family, {})})
    tr = training.train
    t0 = time.perf_counter()
    predictor.fit_records(tr.prompts, tr.lengths, tr.models, tr.datasets)
    fit_s = time.perf_counter() - t0
    rows = []
    for name, test in training.tests.items():
        ests = predictor.predict(test.prompts, test.models)
        if family not in latency:  # once per family: the first test set's distinct prompts
            uniq = list(dict.fromkeys(test.prompts))[:LATENCY_PROMPTS]
            latency[family] = measure_latency(
                predictor, uniq, None, n_single=cfg.latency_single, min_batch_prompts=len(uniq)
            )
        for sc in sets[name]:
            row = score_row(training.split, family, sc, [ests[i] for i in sc.index])
            row.update(
                recipe=training.recipe,
                training=training.name,
                latency_p50_ms=latency[family]["latency_p50_ms"],
                prompts_per_s=latency[family]["prompts_per_s"],
                fit_s=fit_s,
            )
            rows.append(row)
    return rows


def _families(cfg: GeneralizationConfig) -> list[str]:
    from ssjf.bench.predictor import default_families

    if cfg.families in (None, ("all",)):
        return default_families(include_all=cfg.families == ("all",))
    return list(cfg.families or ())


def run_generalization(cfg: GeneralizationConfig, report: Report | None = None) -> dict[str, Any]:
    """Every family on every training of the chosen splits: rows, definitions, sizes, wall time."""
    say = report or (lambda _msg: None)
    check_recipe(cfg.recipe)
    t_start = time.perf_counter()
    data = load_collections(needed_collections(cfg.splits, cfg.recipe))
    families = _families(cfg)
    rows: list[dict[str, Any]] = []
    trainings: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    latency: dict[str, dict[str, float]] = {}
    for split in cfg.splits:
        built = build_trainings(
            split,
            cfg.recipe,
            data,
            test_frac=cfg.test_frac,
            seed=cfg.seed,
            families=cfg.held_out_families,
        )
        for tr in built:
            sets = {n: scored_sets(n, te, tr.pools[n]) for n, te in tr.tests.items()}
            t0 = time.perf_counter()
            say(
                f"{tr.name} ({cfg.recipe}): train {len(tr.train):,} records "
                f"({tr.describe['dropped_by_text']:,} dropped by text, "
                f"{tr.describe['dropped_by_family']:,} by family); test "
                + ", ".join(f"{k} {len(v):,}" for k, v in tr.tests.items())
            )
            for fam in families:
                try:
                    fam_rows = _family_rows(fam, tr, sets, cfg, latency)
                except Exception as exc:  # one broken family must not sink the benchmark
                    failures[f"{fam}@{tr.name}"] = f"{type(exc).__name__}: {exc}"
                    say(f"[red]{fam} on {tr.name} failed[/red]: {exc}")
                    continue
                rows += fam_rows
                say(
                    f"  {fam}: "
                    + ", ".join(f"{r['dataset']} tau {r['tau_mean']:.3f}" for r in fam_rows)
                    + f" (fit {fam_rows[0]['fit_s']:.0f} s)"
                )
            trainings.append({**tr.describe, "wall_s": time.perf_counter() - t0})
    return {
        "rows": rows,
        "failures": failures,
        "meta": {
            "splits": {s: SPLIT_DEFINITIONS[s] for s in cfg.splits},
            "recipe": cfg.recipe,
            "recipe_definition": RECIPE_DEFINITIONS[cfg.recipe],
            "held_out_families": list(cfg.held_out_families),
            "test_frac": cfg.test_frac,
            "seed": cfg.seed,
            "leakage": LEAKAGE_RULE,
            "families": families,
            "trainings": trainings,
            "token_unit": next(iter(data.values())).unit if data else None,
            "wall_s": time.perf_counter() - t_start,
            "latency": "one prompt per call on one CPU core, embedding cache disabled, on "
            f"up to {LATENCY_PROMPTS} distinct prompts of the first test set; batched "
            "prompts/s on the same prompts",
        },
    }
