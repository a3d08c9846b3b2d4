"""Tiny predictors and streams for the online-retraining tests (fit in microseconds)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.predict.base import Predictor
from ssjf.predict.records import LengthData
from ssjf.request import Request
from ssjf.sim.job import Job

#: Prompt kinds and their base lengths; the generator scales them.
KINDS = {"short": 10, "medium": 30, "long": 90}
#: How much longer than the base each generator answers ("x", "y": never in training).
SCALE = {"a": 1.0, "b": 1.5, "x": 6.0, "y": 0.2}


class WordMean(Predictor):
    """Mean length per (model, first word of the prompt); per first word for unknown models."""

    needs_extra = None

    def fit(
        self,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Sequence[str | None] | None = None,
    ) -> WordMean:
        if self.params.get("fail"):
            raise RuntimeError("this fit always fails")
        ms = list(models) if models is not None else [None] * len(prompts)
        by_model: dict[tuple[str | None, str], list[float]] = defaultdict(list)
        by_word: dict[str, list[float]] = defaultdict(list)
        for p, y, m in zip(prompts, lengths, ms, strict=True):
            by_model[(m, p.split()[0])].append(float(y))
            by_word[p.split()[0]].append(float(y))
        self.table = {k: float(np.mean(v)) for k, v in by_model.items()}
        self.words = {k: float(np.mean(v)) for k, v in by_word.items()}
        self.overall = float(np.mean(lengths)) if len(lengths) else 1.0
        self.fitted = True
        return self

    def predict_points(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> np.ndarray:
        ms = list(models) if models is not None else [None] * len(prompts)
        out = []
        for p, m in zip(prompts, ms, strict=True):
            w = p.split()[0]
            out.append(self.table.get((m, w), self.words.get(w, self.overall)))
        return np.array(out, dtype=float)

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        return [LengthEstimate(point=float(p)) for p in self.predict_points(prompts, models)]

    def _save_weights(self, path: Path) -> None:
        raise NotImplementedError("a test predictor")

    def _load_weights(self, path: Path) -> None:
        raise NotImplementedError("a test predictor")


def records(n: int, models: Sequence[str], seed: int, tag: str = "r") -> LengthData:
    """``n`` records of random kinds answered by ``models`` (lengths: kind x scale x noise)."""
    rng = random.Random(seed)
    out = LengthData()
    for i in range(n):
        kind = rng.choice(sorted(KINDS))
        m = rng.choice(list(models))
        y = max(1, round(KINDS[kind] * SCALE[m] * rng.lognormvariate(0, 0.2)))
        out.append(f"{kind} question {tag}{i} {rng.randint(0, 9)}", y, m, f"{tag}:{i}", tag)
    return out


def shipped(base: LengthData) -> WordMean:
    """The "shipped" predictor: trained on ``base`` (models a, b only)."""
    return WordMean().fit(base.prompts, base.lengths, base.models)


def stream_jobs(
    predictor: Predictor, n: int, seed: int, gap: float = 1.0, no_prompt: float = 0.0
) -> list[Job]:
    """Jobs in arrival order, mostly by unseen generators, with the predictor's estimates.

    ``gap``: mean inter-arrival time as a multiple of the mean service time (paper cost);
    ``no_prompt``: share of requests sent without a prompt (estimate kept as given).
    """
    data = records(n, ["x", "y", "a"], seed, tag="s")
    ests = predictor.predict(data.prompts, data.models)
    rng = random.Random(seed + 1)
    mean_service = 0.1 + 0.02 * float(np.mean(data.lengths))
    t, jobs = 0.0, []
    for i in range(n):
        t += rng.expovariate(1.0 / (gap * mean_service))
        bare = rng.random() < no_prompt
        req = Request(i, t, 5, estimate=ests[i], prompt=None if bare else data.prompts[i],
                      model=data.models[i])  # fmt: skip
        jobs.append(Job(req, data.lengths[i]))
    return jobs
