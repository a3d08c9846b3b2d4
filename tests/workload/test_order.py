"""Record order: grouped files are told apart from mixed ones, and shuffles are seeded."""

from __future__ import annotations

import numpy as np

from ssjf.workload.order import grouping, length_order_rho, model_changes, shuffled
from ssjf.workload.pool import Pool


def _pool(models: list[str] | None, lengths: list[int]) -> Pool:
    n = len(lengths)
    return Pool(
        name="t",
        prompt_tokens=np.ones(n, dtype=np.int64),
        output_tokens=np.asarray(lengths, dtype=np.int64),
        models=list(models) if models is not None else None,
    )


def test_expected_changes_match_random_orders() -> None:
    models = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    changes, expected = model_changes(models)
    assert changes == 2
    rng = np.random.default_rng(0)
    mean = np.mean([model_changes(list(rng.permutation(models)))[0] for _ in range(400)])
    assert abs(mean - expected) < 1.0


def test_grouped_by_model_is_flagged_and_shuffled_is_not() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 500, 120).tolist()
    grouped = _pool(["llama"] * 60 + ["mistral"] * 60, lengths)
    why = grouping(grouped)
    assert why is not None and "grouped by model" in why
    assert grouping(shuffled(grouped, seed=3)) is None


def test_a_rare_model_in_one_block_is_not_grouping() -> None:
    models = ["a"] * 200
    models[50:53] = ["b"] * 3  # E ~ 6 changes: too few to judge
    assert grouping(_pool(models, [5] * 200)) is None


def test_sorted_by_length_is_flagged() -> None:
    lengths = np.sort(np.random.default_rng(2).integers(1, 2000, 200)).tolist()
    why = grouping(_pool(None, lengths))
    assert why is not None and "sorted by output length" in why and "increasing" in why
    assert grouping(_pool(None, lengths[::-1])) is not None


def test_ties_carry_no_order() -> None:
    assert length_order_rho(np.full(100, 7)) == 0.0
    # Two values, alternating: no trend however the ties are ranked.
    assert abs(length_order_rho(np.tile([1, 2], 50))) < 0.05


def test_shuffle_is_a_seeded_permutation() -> None:
    pool = _pool(["a", "b"] * 20, list(range(1, 41)))
    a, b, c = shuffled(pool, 5), shuffled(pool, 5), shuffled(pool, 6)
    assert a.output_tokens.tolist() == b.output_tokens.tolist()
    assert a.output_tokens.tolist() != c.output_tokens.tolist()
    assert sorted(a.output_tokens.tolist()) == list(range(1, 41))
    assert a.models is not None
    # Records stay whole: each length keeps its model.
    assert all((m == "a") == (t % 2 == 1) for m, t in zip(a.models, a.output_tokens, strict=True))
