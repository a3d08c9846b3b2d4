"""Metrics against hand-computed values, and against scipy on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, spearmanr

from ssjf.estimate import LengthEstimate
from ssjf.predict.metrics import (
    bucket_accuracy,
    bucket_of,
    coverage,
    length_metrics,
    spearman,
)
from ssjf.stats import kendall_tau_b


def test_spearman_by_hand() -> None:
    # ranks (1,2,3) vs (1,3,2): d^2 = 0+1+1 = 2 -> 1 - 6*2/(3*8) = 0.5
    assert spearman([10, 20, 30], [5, 9, 7]) == pytest.approx(0.5)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=40).filter(
        lambda v: len({a for a, _ in v}) > 1 and len({b for _, b in v}) > 1
    )
)
def test_matches_scipy_with_ties(pairs: list[tuple[int, int]]) -> None:
    x = np.array([a for a, _ in pairs], dtype=float)
    y = np.array([b for _, b in pairs], dtype=float)
    assert kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-9)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-9)


def test_buckets_by_hand() -> None:
    edges = [42, 141, math.inf]
    assert bucket_of(np.array([1, 42, 43, 141, 142, 10_000]), edges).tolist() == [0, 0, 1, 1, 2, 2]
    # 10 vs 40 same bucket; 50 vs 30 differ; 500 vs 1000 same -> 2/3
    assert bucket_accuracy(np.array([10, 50, 500]), np.array([40, 30, 1000]), edges) == 2 / 3


def test_coverage_and_full_report() -> None:
    ests = [
        LengthEstimate(10, ((0.1, 5), (0.9, 20))),
        LengthEstimate(100, ((0.1, 50), (0.9, 200))),
        LengthEstimate(30, ((0.1, 20), (0.9, 40))),
        LengthEstimate(300, ((0.1, 200), (0.9, 400))),
    ]
    true = np.array([12, 300, 25, 250])
    assert coverage(ests, true) == 0.75
    assert coverage([LengthEstimate(1)], np.array([1])) is None
    rep = length_metrics(ests, true, ["a", "a", "b", "b"], min_per_model=2)
    assert rep["n"] == 4
    assert rep["mae"] == pytest.approx((2 + 200 + 5 + 50) / 4)
    # relative errors 2/12, 200/300, 5/25, 50/250 -> median of (.1667,.6667,.2,.2) = 0.2
    assert rep["median_rel_error"] == pytest.approx(0.2)
    assert rep["per_model"]["a"]["tau"] == pytest.approx(1.0)
    assert rep["per_model"]["b"]["tau"] == pytest.approx(1.0)
    assert rep["tau_mean"] == pytest.approx(1.0)
    assert rep["tau"] == pytest.approx(kendalltau([10, 100, 30, 300], true).statistic)
    assert rep["coverage_80"] == 0.75
