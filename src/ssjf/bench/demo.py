"""`make demo`: FCFS vs the default policy vs SSJF vs oracle SJF on real data, end to end.

Real Azure conversation arrivals (rate-scaled to a load of the chosen engine)
carry AlpacaEval prompts with one generator's real output lengths. A simple
predictor is trained on the other prompts (split by prompt, never by record)
and predicts the lengths the scheduler sees. Without data, a clearly labelled
synthetic workload stands in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ssjf.bench.runner import (
    ExperimentResult,
    PolicyEntry,
    Progress,
    RunSettings,
    parse_policies,
    run_experiment,
)
from ssjf.estimate import LengthEstimate
from ssjf.policies import DEFAULT_POLICY
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.build import DEFAULT_GENERATOR, synthetic_pool
from ssjf.workload.data import DataError
from ssjf.workload.sources import Pool, load_alpaca, load_azure


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What the demo runs; defaults finish in about a minute on a laptop core."""

    #: (engine, cost model): the paper's serial setting, then a small continuous-batching
    #: engine (8 sequences) so that requests queue at this load and order matters.
    engines: tuple[tuple[str, str], ...] = (("serial", "paper"), ("continuous:8", "affine"))
    load: float = 0.85
    requests: int = 2000
    seeds: tuple[int, ...] = (0, 1, 2)
    generator: str = DEFAULT_GENERATOR
    #: Share of AlpacaEval prompts used to train the predictor; the rest are served.
    train_fraction: float = 0.6
    predictor: str = "tfidf"
    #: Policy specs: the baseline, the default (SSJF under a tail budget), mean-first
    #: SSJF, and the oracle.
    policies: tuple[str, ...] = ("fcfs", DEFAULT_POLICY, "ssjf", "sjf")
    split_seed: int = 1234


class PromptSizeBins:
    """FALLBACK predictor: the median training length of prompts of similar size.

    Used only when ``ssjf.predict`` is unavailable; it reads nothing but prompt
    sizes, so it is a weak baseline, and the demo labels it as such.
    """

    def __init__(self, bins: int = 8) -> None:
        self.bins = bins
        self.edges = np.zeros(0)
        self.points = np.zeros(1)

    def fit(self, prompt_tokens: np.ndarray, lengths: np.ndarray) -> PromptSizeBins:
        """Learn bin edges (prompt-size quantiles) and each bin's median length."""
        qs = np.linspace(0, 1, self.bins + 1)[1:-1]
        self.edges = np.unique(np.quantile(prompt_tokens, qs))
        which = np.searchsorted(self.edges, prompt_tokens, side="right")
        overall = float(np.median(lengths))
        self.points = np.array(
            [
                float(np.median(lengths[which == b])) if np.any(which == b) else overall
                for b in range(len(self.edges) + 1)
            ]
        )
        return self

    def predict(self, prompt_tokens: np.ndarray) -> list[LengthEstimate]:
        """One estimate per prompt size."""
        which = np.searchsorted(self.edges, prompt_tokens, side="right")
        return [LengthEstimate(point=float(self.points[b])) for b in which]


@dataclass(slots=True)
class DemoResult:
    """The experiment plus a description of what was run."""

    result: ExperimentResult
    describe: dict[str, Any] = field(default_factory=dict)


def split_by_prompt(pool: Pool, train_fraction: float, seed: int) -> tuple[Pool, Pool]:
    """Train/test pools split by prompt id (the same prompt never lands on both sides)."""
    if pool.prompt_ids is None:
        raise ValueError(f"{pool.name} has no prompt ids to split by")
    ids = np.unique(pool.prompt_ids)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(ids)
    n_train = max(1, min(len(ids) - 1, round(train_fraction * len(ids))))
    train_ids = set(perm[:n_train].tolist())
    mask = np.array([i in train_ids for i in pool.prompt_ids.tolist()])
    return pool.take(np.flatnonzero(mask)), pool.take(np.flatnonzero(~mask))


def train_and_predict(train: Pool, test: Pool, family: str) -> tuple[list[LengthEstimate], str]:
    """Fit a predictor on ``train`` and predict ``test``; falls back to prompt-size bins."""
    try:
        from ssjf.predict import make_predictor
    except ImportError as exc:
        fallback_reason = f"ssjf.predict unavailable ({exc})"
    else:
        assert train.prompts is not None and test.prompts is not None
        try:
            predictor = make_predictor(family)
            predictor.fit(train.prompts, [float(x) for x in train.output_tokens], train.models)
            return list(
                predictor.predict(test.prompts, test.models)
            ), f"{family} (trained on {len(train)} held-apart prompts)"
        except (ImportError, RuntimeError, ValueError) as exc:
            fallback_reason = f"predictor {family!r} failed ({exc})"
    bins = PromptSizeBins().fit(train.prompt_tokens, train.output_tokens.astype(float))
    return (
        bins.predict(test.prompt_tokens),
        f"FALLBACK prompt-size bins: {fallback_reason}",
    )


def demo_pools(cfg: DemoConfig) -> tuple[Pool, Pool | None, dict[str, Any]]:
    """(request pool with estimates, arrival pool or None, description)."""
    try:
        prompts = load_alpaca(cfg.generator)
        trace = load_azure("conv")
    except DataError as exc:
        pool = synthetic_pool()
        return (
            pool,
            None,
            {
                "data": "SYNTHETIC (no real data found: " + str(exc).split(";")[0] + ")",
                "arrivals": "poisson (synthetic)",
                "predictor": "SYNTHETIC noisy truth: true length x exp(N(0, 0.6))",
                "synthetic": True,
            },
        )
    train, test = split_by_prompt(prompts, cfg.train_fraction, cfg.split_seed)
    estimates, label = train_and_predict(train, test, cfg.predictor)
    test = replace(test, estimates=estimates)
    return (
        test,
        trace,
        {
            "data": f"AlpacaEval prompts, real output lengths of {cfg.generator} "
            f"({len(set(test.prompt_ids.tolist())) if test.prompt_ids is not None else len(test)} "
            "held-out prompts)",
            "arrivals": "Azure LLM 2023 conversation trace, rate-scaled",
            "predictor": label,
            "synthetic": False,
        },
    )


def run_demo(
    cfg: DemoConfig, progress: Progress | None = None, keep_results: bool = False
) -> DemoResult:
    """Run the demo's policies on its workload on every engine; see the module doc."""
    pool, trace, describe = demo_pools(cfg)
    entries: Sequence[PolicyEntry] = parse_policies(",".join(cfg.policies))
    per_engine = len(cfg.seeds) * len(entries)
    total = per_engine * len(cfg.engines)
    merged = ExperimentResult(rows=[], per_seed=[], workloads=[])
    for k, (engine, cost) in enumerate(cfg.engines):
        settings = RunSettings(
            engine=engine,
            cost=cost,
            requests=cfg.requests,
            seeds=cfg.seeds,
            load=cfg.load,
            arrival=ArrivalSpec("trace" if trace is not None else "poisson"),
            estimates="source",
            keep_results=keep_results,
            # The held-out prompts are fewer than the requests: a bootstrap, on purpose.
            resample=True,
        )

        def report(
            done: int, _total: int, label: str, base: int = k * per_engine, eng: str = engine
        ) -> None:
            if progress is not None:
                progress(base + done, total, f"{eng} {label}")

        res = run_experiment(pool, entries, settings, arrival_pool=trace, progress=report)
        merged.rows.extend(res.rows)
        merged.per_seed.extend(res.per_seed)
        merged.workloads.extend(res.workloads)
        for label, arrays in res.jcts.items():
            merged.jcts[f"{engine} {label}"] = arrays
    describe = {
        **describe,
        "engines": [f"{e} (cost {c})" for e, c in cfg.engines],
        "load": cfg.load,
        "default_policy": DEFAULT_POLICY,
    }
    return DemoResult(result=merged, describe=describe)
