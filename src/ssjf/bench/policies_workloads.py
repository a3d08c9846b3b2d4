"""Workloads of `ssjf bench policies`: served requests whose predictor never saw them.

Each workload trains its predictor only on data disjoint from what it serves
and describes both sides: training data, held-out data, and leakage counts
(served prompts whose text, compared by :func:`ssjf.predict.split.prompt_key`,
is also a training prompt: zero by construction, with the records dropped to
get there counted).

- ``in-dist``: the predictor family (default ``tfidf``) trains on the train side
  of the fixed prompt-id split of AlpacaEval and FLASK (the split of
  `ssjf bench predictor`); the queue serves the held-out AlpacaEval prompts
  answered by ONE generator (:data:`~ssjf.workload.build.DEFAULT_GENERATOR`).
- ``cross-dataset``: trains on all of AlpacaEval + FLASK, serves ShareGPT
  (its ``chatgpt`` answers); ShareGPT prompts whose text is a training prompt
  are dropped from the queue.
- ``unseen-models``: whole generator families (names containing ``claude`` or
  ``gpt4``, compared without punctuation, so ``gpt-4o`` counts) are removed
  from training, in AlpacaEval and FLASK alike; the queue mixes the held-out
  generators with as many seen ones (seeded pick), on held-out prompts only.
- ``long-prompts``: the Azure code trace (prefill-heavy, token counts, no
  text). The predictor is the median output length per prompt-size bin,
  fitted on the FIRST half of the trace in time; the queue serves the second
  half (a deployment learning from its own earlier traffic).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.predict.records import LengthData
from ssjf.predict.split import DEFAULT_SEED, drop_prompts, prompt_key, split_by_prompt
from ssjf.stats import kendall_tau_b
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.build import DEFAULT_GENERATOR
from ssjf.workload.pool import Pool

#: The workloads, in the order tables list them.
WORKLOADS: tuple[str, ...] = ("in-dist", "cross-dataset", "unseen-models", "long-prompts")
#: Generator families held out of training for ``unseen-models`` (substrings of the
#: name with punctuation removed: AlpacaEval has 4 claude and 7 gpt4 / gpt-4o generators).
UNSEEN_FAMILIES: tuple[str, ...] = ("claude", "gpt4")


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """How the workloads' predictors are trained (defaults: the documented benchmark)."""

    family: str = "tfidf"  # ssjf.predict.DEFAULT_FAMILY: cheap and the best cheap family
    test_frac: float = 0.25  # the prompt-id split of `ssjf bench predictor`
    split_seed: int = DEFAULT_SEED
    generator: str = DEFAULT_GENERATOR
    unseen_families: tuple[str, ...] = UNSEEN_FAMILIES
    #: Cap on training records (a seeded subsample; None = all): --quick trains in ~1 s.
    max_train: int | None = None
    #: Bursty arrivals where the workload has no timestamps: gamma gaps with this CV.
    bursty_cv: float = 3.0
    #: Prompt-size bins of the long-prompts predictor (quantiles of the training half).
    size_bins: int = 16


@dataclass(slots=True)
class BenchWorkload:
    """Served records (with the predictor's estimates) and how they were made."""

    name: str
    pool: Pool
    #: What "bursty" arrivals mean here: the trace's own timestamps, else gamma:CV.
    bursty: ArrivalSpec
    describe: dict[str, Any]
    #: prompt_key of every training prompt (empty when the data has no text).
    train_keys: frozenset[str]
    #: Generators the predictor trained on.
    train_models: frozenset[str]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def in_families(model: str | None, families: Sequence[str]) -> bool:
    """Whether ``model`` belongs to one of ``families`` (substring, punctuation ignored)."""
    return model is not None and any(_norm(f) in _norm(model) for f in families)


def _cap(data: LengthData, cap: int | None, seed: int) -> LengthData:
    if cap is None or len(data) <= cap:
        return data
    pick = np.sort(np.random.default_rng(seed).choice(len(data), size=cap, replace=False))
    return data.subset(pick.tolist())


def _tau(pool: Pool, mask: np.ndarray | None = None) -> float | None:
    """Kendall tau-b of the served estimates against the true lengths (evaluation only)."""
    assert pool.estimates is not None
    est = np.array([e.point for e in pool.estimates], dtype=float)
    true = pool.output_tokens.astype(float)
    if mask is not None:
        est, true = est[mask], true[mask]
    return float(kendall_tau_b(est, true)) if len(true) > 1 else None


def _fit_predict(
    cfg: WorkloadConfig, train: LengthData, serve: Pool
) -> tuple[list[LengthEstimate], dict[str, Any]]:
    from ssjf.predict import make_predictor

    predictor = make_predictor(cfg.family)
    t0 = time.perf_counter()
    predictor.fit(train.prompts, [float(x) for x in train.lengths], train.models)
    fit_s = time.perf_counter() - t0
    assert serve.prompts is not None
    ests = list(predictor.predict(serve.prompts, serve.models))
    info = {
        "predictor": cfg.family,
        "train_records": len(train),
        "train_prompts": len(set(train.prompt_ids)),
        "train_datasets": sorted({d.split("/")[0] for d in train.datasets}),
        "train_generators": train.model_names,
        "fit_wall_s": fit_s,
    }
    return ests, info


def _pool(name: str, data: LengthData, tokens: dict[str, int]) -> Pool:
    """A serving pool from length records; prompt sizes from the source file's token counts."""
    ids: dict[str, int] = {}
    return Pool(
        name=name,
        prompt_tokens=np.array([tokens[p] for p in data.prompts], dtype=np.int64),
        output_tokens=np.maximum(np.array(data.lengths, dtype=np.int64), 1),
        prompts=list(data.prompts),
        prompt_ids=np.array([ids.setdefault(p, len(ids)) for p in data.prompt_ids]),
        models=list(data.models),
        meta={"token_unit": data.unit},
    )


def _finish(
    name: str,
    cfg: WorkloadConfig,
    train: LengthData,
    serve: Pool,
    describe: dict[str, Any],
) -> BenchWorkload:
    """Train, predict, and check and describe the disjointness of train and serve.

    Leakage is checked against the whole training side, before any ``max_train`` cap.
    """
    keys = frozenset(prompt_key(p) for p in train.prompts)
    models = frozenset(train.model_names)
    ests, info = _fit_predict(cfg, _cap(train, cfg.max_train, cfg.split_seed), serve)
    serve = replace(serve, estimates=ests)
    assert serve.prompts is not None
    leaked = sum(prompt_key(p) in keys for p in serve.prompts)
    describe = {
        "workload": name,
        **describe,
        **info,
        "served_records": len(serve),
        "served_prompts": len(set(serve.prompts)),
        "served_generators": sorted({m for m in serve.models or [] if m is not None}),
        "leaked_served_prompts": leaked,
        "estimate_tau": _tau(serve),
    }
    return BenchWorkload(
        name=name,
        pool=serve,
        bursty=ArrivalSpec("gamma", cfg.bursty_cv),
        describe=describe,
        train_keys=keys,
        train_models=models,
    )


class _Sources:
    """The prompt datasets, loaded once and split once for every prompt workload."""

    def __init__(self, cfg: WorkloadConfig) -> None:
        from ssjf.predict.data import load_prompt_dataset
        from ssjf.workload.sources import load_prompts

        self.alpaca = load_prompt_dataset("alpaca_eval")
        self.flask = load_prompt_dataset("flask")
        self.tr_a, self.te_a = split_by_prompt(self.alpaca, cfg.test_frac, cfg.split_seed)
        self.tr_f, self.te_f = split_by_prompt(self.flask, cfg.test_frac, cfg.split_seed)
        pool = load_prompts(None)
        assert pool.prompts is not None
        self.tokens = dict(zip(pool.prompts, pool.prompt_tokens.tolist(), strict=True))
        self.dropped = 0

    def train_side(self) -> LengthData:
        """Both datasets' train sides, less any text that is a held-out prompt of either."""
        train = LengthData(unit=self.alpaca.unit).extend(self.tr_a).extend(self.tr_f)
        held = [*self.te_a.prompts, *self.te_f.prompts]
        kept, dropped = drop_prompts(train, held)
        self.dropped = dropped
        return kept


def _split_note(cfg: WorkloadConfig) -> str:
    return (
        f"{cfg.test_frac:.0%} of prompt ids of alpaca_eval and flask held out "
        f"(seed {cfg.split_seed}, the split of `ssjf bench predictor`)"
    )


def in_dist(cfg: WorkloadConfig, src: _Sources) -> BenchWorkload:
    """Held-out AlpacaEval prompts of one generator; trained on the split's train side."""
    serve = src.te_a.where_model(cfg.generator)
    if not len(serve):
        known = ", ".join(src.alpaca.model_names)
        raise ValueError(f"in-dist: no held-out records of generator {cfg.generator!r}: {known}")
    train = src.train_side()
    return _finish(
        "in-dist",
        cfg,
        train,
        _pool(f"alpaca_eval held out ({cfg.generator})", serve, src.tokens),
        {
            "training_data": "alpaca_eval + flask, train side of the split",
            "held_out_data": f"alpaca_eval held-out prompts answered by {cfg.generator}",
            "split": _split_note(cfg),
            "train_records_dropped_as_held_out_text": src.dropped,
        },
    )


def cross_dataset(cfg: WorkloadConfig, src: _Sources) -> BenchWorkload:
    """ShareGPT served; trained on all of AlpacaEval + FLASK; leaking texts dropped."""
    from ssjf.workload.sources import load_prompts

    train = LengthData(unit=src.alpaca.unit).extend(src.alpaca).extend(src.flask)
    sharegpt = load_prompts(None, "prompts/sharegpt_sample.jsonl.gz")
    assert sharegpt.prompts is not None
    keys = {prompt_key(p) for p in train.prompts}
    keep = np.array([prompt_key(p) not in keys for p in sharegpt.prompts])
    serve = sharegpt.take(np.flatnonzero(keep))
    serve.name = "sharegpt (texts not in training)"
    return _finish(
        "cross-dataset",
        cfg,
        train,
        serve,
        {
            "training_data": "all of alpaca_eval + flask",
            "held_out_data": "sharegpt sample (chatgpt answers)",
            "served_records_dropped_as_training_text": int((~keep).sum()),
            "note": "flask has a 'chatgpt' generator: the predictor's per-model head for "
            "that name was trained on another dataset's prompts",
        },
    )


def unseen_models(cfg: WorkloadConfig, src: _Sources) -> BenchWorkload:
    """Held-out generator families mixed with seen ones, on held-out prompts."""
    fams = cfg.unseen_families
    held = [m for m in src.alpaca.model_names if in_families(m, fams)]
    if not held:
        raise ValueError(
            f"unseen-models: no AlpacaEval generator matches {list(fams)}; "
            f"generators: {', '.join(src.alpaca.model_names)}"
        )
    seen = [m for m in src.alpaca.model_names if m not in held]
    order = np.random.default_rng(cfg.split_seed).permutation(len(seen))
    mixed = sorted(seen[i] for i in order[: len(held)])
    train_all = src.train_side()
    out_of_family = [i for i, m in enumerate(train_all.models) if not in_families(m, fams)]
    train = train_all.subset(out_of_family)
    wanted = set(held) | set(mixed)
    serve = src.te_a.subset(i for i, m in enumerate(src.te_a.models) if m in wanted)
    wl = _finish(
        "unseen-models",
        cfg,
        train,
        _pool("alpaca_eval held out, unseen + seen generators", serve, src.tokens),
        {
            "training_data": "alpaca_eval + flask, train side of the split, without the "
            f"generator families {list(fams)}",
            "held_out_data": "alpaca_eval held-out prompts answered by the held-out and "
            "as many seen generators",
            "split": _split_note(cfg),
            "held_out_families": list(fams),
            "held_out_generators": held,
            "held_out_generators_flask": sorted(
                m for m in src.flask.model_names if in_families(m, fams)
            ),
            "seen_generators_served": mixed,
            "train_records_dropped_as_held_out_family": len(train_all) - len(train),
        },
    )
    models = wl.pool.models or []
    unseen = np.array([m in held for m in models])
    wl.describe["estimate_tau_unseen"] = _tau(wl.pool, unseen)
    wl.describe["estimate_tau_seen"] = _tau(wl.pool, ~unseen)
    return wl


def long_prompts(cfg: WorkloadConfig) -> BenchWorkload:
    """Second half (in time) of the Azure code trace; prompt-size bins fitted on the first."""
    from ssjf.bench.demo import PromptSizeBins
    from ssjf.workload.sources import load_azure

    trace = load_azure("code")
    half = len(trace) // 2
    train = trace.take(np.arange(half))
    serve = trace.take(np.arange(half, len(trace)))
    bins = PromptSizeBins(cfg.size_bins).fit(train.prompt_tokens, train.output_tokens.astype(float))
    serve = replace(
        serve, name="azure-code, second half", estimates=bins.predict(serve.prompt_tokens)
    )
    assert train.timestamps is not None and serve.timestamps is not None
    describe = {
        "workload": "long-prompts",
        "training_data": f"azure-code trace, first half in time ({half} requests, "
        f"t <= {float(train.timestamps[-1]):.0f} s)",
        "held_out_data": f"azure-code trace, second half ({len(serve)} requests, "
        f"t >= {float(serve.timestamps[0]):.0f} s)",
        "predictor": f"median output length per prompt-size bin ({cfg.size_bins} quantile bins)",
        "train_records": half,
        "served_records": len(serve),
        "leaked_served_prompts": None,
        "leakage": "no text; disjoint in time",
        "prompt_tokens_median": float(np.median(serve.prompt_tokens)),
        "output_tokens_median": float(np.median(serve.output_tokens)),
        "estimate_tau": _tau(serve),
    }
    return BenchWorkload(
        name="long-prompts",
        pool=serve,
        bursty=ArrivalSpec("trace"),
        describe=describe,
        train_keys=frozenset(),
        train_models=frozenset(),
    )


def build_workloads(names: Sequence[str], cfg: WorkloadConfig) -> list[BenchWorkload]:
    """The named workloads (see the module doc), each with its own disjoint predictor."""
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; use {', '.join(WORKLOADS)}")
    src: _Sources | None = None
    out: list[BenchWorkload] = []
    for name in names:
        if name == "long-prompts":
            out.append(long_prompts(cfg))
            continue
        src = src or _Sources(cfg)
        build = {"in-dist": in_dist, "cross-dataset": cross_dataset, "unseen-models": unseen_models}
        out.append(build[name](cfg, src))
    return out
