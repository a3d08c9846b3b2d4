"""The calibrator: per-model scale and spread learnt from completions, censoring-aware."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.calibration import LEVELS, CalibrationSettings, Calibrator
from ssjf.calibration_window import GRID, RatioWindow, grid_mean
from ssjf.estimate import LengthEstimate


def fed(items: Sequence[tuple[str | None, float, int, bool]], **kw: Any) -> Calibrator:
    cal = Calibrator(CalibrationSettings(**kw))
    for model, pred, actual, censored in items:
        cal.observe(model, pred, actual, censored)
    return cal


def test_a_model_answering_three_times_longer_gets_a_scale_near_three() -> None:
    rng = random.Random(0)
    cal = Calibrator()
    for _ in range(100):
        p = rng.uniform(20, 800)
        cal.observe("slow", p, round(3 * p * rng.lognormvariate(0, 0.1)), False)
        cal.observe("fine", p, round(p * rng.lognormvariate(0, 0.1)), False)
    assert cal.scale("slow") == pytest.approx(3.0, rel=0.1)
    assert cal.scale("fine") == pytest.approx(1.0, rel=0.1)
    est = cal.estimate(LengthEstimate(100.0), "slow")
    assert est.point == pytest.approx(100 * cal.scale("slow"))
    # A model never seen gets the pooled scale, between the two.
    assert cal.scale("fine") < cal.scale("new") == cal.pooled_scale() < cal.scale("slow")


def test_before_any_completion_a_point_gets_a_spread_and_keeps_its_mean() -> None:
    cal = Calibrator(CalibrationSettings(sigma=0.8))
    est = cal.estimate(LengthEstimate(200.0), "m")
    assert est.point == 200.0
    assert [q for q, _ in est.quantiles] == list(LEVELS)
    # The distribution's mean is the point, so remaining() starts where the point is...
    assert est.remaining(1) == pytest.approx(199.0)
    # ...and conditions on progress: a request past its median expects more than point - g.
    g = int(est.quantile(0.6))
    assert est.remaining(g) > est.point - g
    bare = Calibrator(CalibrationSettings(sigma=0)).estimate(LengthEstimate(5.0), None)
    assert bare.quantiles == ()


def test_an_estimate_with_quantiles_keeps_its_shape() -> None:
    cal = fed([("m", 100.0, 200, False)] * 50, prior_count=0)
    raw = LengthEstimate(100.0, ((0.1, 50.0), (0.5, 90.0), (0.9, 300.0)))
    out = cal.estimate(raw, "m")
    assert cal.scale("m") == pytest.approx(2.0)
    assert out.point == pytest.approx(200.0)
    assert out.quantiles == tuple((q, pytest.approx(2 * v)) for q, v in raw.quantiles)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.tuples(st.floats(-5, 5), st.booleans()), min_size=1, max_size=60),
       pick=st.integers(0, 59))  # fmt: skip
def test_censoring_a_value_never_lowers_a_kaplan_meier_quantile(
    values: list[tuple[float, bool]], pick: int
) -> None:
    # The invariant is on the quantiles. The scale (their mean, with the exponential
    # upper tail whose size is the gap between the top two levels) weighs the 0.90
    # level negatively, so censoring can lower it a little (Hypothesis found 2.22 vs
    # 2.27 when it lifts only that quantile): see ssjf.calibration's module doc.
    i = pick % len(values)
    exact, cut = RatioWindow(64), RatioWindow(64)
    for j, (v, censored) in enumerate(values):
        exact.add(v, censored if j != i else False)
        cut.add(v, censored if j != i else True)
    for lo, hi in zip(exact.quantiles(LEVELS), cut.quantiles(LEVELS), strict=True):
        assert hi >= lo


@settings(max_examples=100, deadline=None)
@given(
    ratios=st.lists(st.floats(0.01, 50.0), min_size=1, max_size=40),
    pred=st.floats(1.0, 1000.0),
)
def test_censored_lengths_imply_at_least_their_ratio(ratios: list[float], pred: float) -> None:
    # Every completion was cut at its limit: the true ratio is at least each one seen;
    # unshrunk (prior_count=0), the scale is at least the smallest of them.
    items = [("m", pred, max(1, round(r * pred)), True) for r in ratios]
    cal = fed(items, prior_count=0)
    floor = min(max(1, round(r * pred)) / pred for r in ratios)
    assert cal.scale("m") >= floor * (1 - 1e-9)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-5, 5), min_size=1, max_size=80))
def test_kaplan_meier_without_censoring_is_the_empirical_quantile(values: list[float]) -> None:
    w = RatioWindow(1000)
    for v in values:
        w.add(v, False)
    srt = sorted(values)
    n = len(srt)
    for q, got in zip(LEVELS, w.quantiles(LEVELS), strict=True):
        assert got == srt[max(math.ceil(q * n - 1e-9), 1) - 1]


@settings(max_examples=50, deadline=None)
@given(
    names=st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=400),
    window=st.integers(1, 20),
    max_models=st.integers(0, 8),
)
def test_memory_is_bounded_however_many_model_names(
    names: list[str], window: int, max_models: int
) -> None:
    cal = Calibrator(CalibrationSettings(window=window, max_models=max_models))
    for i, name in enumerate(names):
        cal.observe(name, 10.0, i % 50, i % 7 == 0)
        cal.estimate(LengthEstimate(10.0), name)
    assert len(cal._groups) <= max_models
    assert all(len(g) <= window and len(g._sorted) == len(g) for g in cal._groups.values())
    assert len(cal._pooled) == min(window, len(names))
    assert cal.completions == len(names)
    # The most recently completed models are the ones kept.
    recent = list(dict.fromkeys(reversed(names)))[:max_models]
    assert set(cal._groups) == set(recent)


def test_window_forgets_the_oldest() -> None:
    cal = fed([("m", 10.0, 100, False)] * 5 + [("m", 10.0, 10, False)] * 5, window=5, prior_count=0)
    assert cal.scale("m") == pytest.approx(1.0)


def test_absurd_ratios_are_clamped() -> None:
    cal = fed([("m", 1.0, 10**9, False)] * 3, prior_count=0, max_ratio=100.0)
    assert cal.scale("m") == pytest.approx(100.0)


def test_settings_parse_and_errors() -> None:
    s = CalibrationSettings.parse("window=64,prior=3,sigma=0.5,models=4,min_samples=10")
    assert (s.window, s.prior_count, s.sigma, s.max_models, s.min_samples) == (64, 3.0, 0.5, 4, 10)
    assert CalibrationSettings.parse("on") == CalibrationSettings()
    with pytest.raises(ValueError, match="window"):
        CalibrationSettings(window=0)
    with pytest.raises(ValueError, match="sigma"):
        CalibrationSettings(sigma=-1)
    with pytest.raises(ValueError, match="expected key=value"):
        CalibrationSettings.parse("windw=3")
    with pytest.raises(ValueError, match="no number"):
        CalibrationSettings.parse("window=big")
    with pytest.raises(ValueError, match="predicted"):
        Calibrator().observe("m", math.nan, 3, False)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(0, 1e4), min_size=len(LEVELS), max_size=len(LEVELS)))
def test_grid_mean_is_the_mean_length_estimate_remaining_starts_from(values: list[float]) -> None:
    # The calibrated point must be the mean of the calibrated quantiles as LengthEstimate
    # reads them (interpolation and upper tail): checked against its own quantile().
    v = sorted(values)
    est = LengthEstimate(0.0, tuple(zip(LEVELS, v, strict=True)))
    slow = sum(est.quantile((i + 0.5) / GRID) for i in range(GRID)) / GRID
    assert grid_mean(LEVELS, v) == pytest.approx(slow, rel=1e-9, abs=1e-9)


def test_small_drifts_are_held_back_large_moves_pass() -> None:
    cal = Calibrator(CalibrationSettings(prior_count=0, tolerance=0.1, window=100))
    for _ in range(40):
        cal.observe("m", 100.0, 100, False)
    assert cal.scale("m") == pytest.approx(1.0)
    for _ in range(4):  # the raw scale drifts up a few percent: not passed on
        cal.observe("m", 100.0, 160, False)
    assert cal._raw_scale(cal._groups["m"]) > 1.01
    assert cal.scale("m") == pytest.approx(1.0)
    for _ in range(60):  # a real change: passed on
        cal.observe("m", 100.0, 300, False)
    assert cal.scale("m") > 2.0
    assert cal.snapshot()[2] == [("m", cal.scale("m"), 100)]
