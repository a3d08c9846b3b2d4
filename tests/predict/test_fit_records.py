"""`Predictor.fit_records`: collections reach the families whose fit reads them, and only those."""

from __future__ import annotations

import numpy as np

from ssjf.predict import make_predictor


def _records(n: int = 120) -> tuple[list[str], list[float], list[str], list[str]]:
    rng = np.random.default_rng(0)
    prompts = [f"write {'a long essay' if i % 2 else 'one word'} about topic {i}" for i in range(n)]
    lengths = [float(400 if i % 2 else 5) * rng.uniform(0.8, 1.2) for i in range(n)]
    # Collection "big" holds 5x the records of "small", and answers the other way round.
    datasets = ["big" if i % 6 else "small" for i in range(n)]
    lengths = [x if d == "big" else 405 - x for x, d in zip(lengths, datasets, strict=True)]
    return prompts, lengths, ["m"] * n, datasets


def test_balance_reads_the_collections_fit_records_passes() -> None:
    prompts, lengths, models, datasets = _records()
    plain = make_predictor("tfidf", balance=1.0).fit(prompts, lengths, models)
    balanced = make_predictor("tfidf", balance=1.0).fit_records(prompts, lengths, models, datasets)
    unbalanced = make_predictor("tfidf").fit_records(prompts, lengths, models, datasets)
    probe = ["write one word about topic 7"]
    # Without collections balance has nothing to weigh: the same fit as balance=0.
    assert plain.predict_points(probe)[0] == unbalanced.predict_points(probe)[0]
    # With them the small collection counts as much as the big one: a different fit.
    assert balanced.predict_points(probe)[0] != plain.predict_points(probe)[0]


def test_families_without_collections_ignore_them() -> None:
    prompts, lengths, models, datasets = _records()
    a = make_predictor("constant").fit_records(prompts, lengths, models, datasets)
    b = make_predictor("constant").fit(prompts, lengths, models)
    assert a.predict_points(["x"])[0] == b.predict_points(["x"])[0]
