import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate


def test_point_only_remaining_counts_down_and_stays_positive() -> None:
    e = LengthEstimate(100)
    assert e.remaining(0) == 100
    assert e.remaining(40) == 60
    assert e.remaining(150) == 1.0


def test_quantile_interpolation() -> None:
    e = LengthEstimate(50, quantiles=((0.1, 10), (0.5, 50), (0.9, 90)))
    assert e.quantile(0.5) == 50
    assert e.quantile(0.3) == pytest.approx(30)
    assert e.quantile(0.01) == 10
    # Past the last level: the exponential tail through (0.5, 50) and (0.9, 90).
    assert e.quantile(0.99) == pytest.approx(90 + 40 / math.log(5) * math.log(10))


def test_quantile_remaining_conditions_on_progress() -> None:
    e = LengthEstimate(50, quantiles=((0.1, 10), (0.5, 50), (0.9, 90)))
    # Given 60 generated, the length is in the (60, 90] part: left is well under the prior mean.
    left = e.remaining(60)
    assert 0 < left < 30
    # Conditioning on more progress never increases the conditional length.
    assert e.remaining(20) + 20 <= e.remaining(60) + 60 + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"point": -1},
        {"point": math.nan},
        {"point": 5, "quantiles": ((0.5, 10), (0.4, 20))},
        {"point": 5, "quantiles": ((0.0, 10),)},
        {"point": 5, "quantiles": ((0.2, 10), (0.4, 5))},
    ],
)
def test_invalid_estimates_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LengthEstimate(**kwargs)


@given(
    st.lists(st.floats(1, 1e4), min_size=1, max_size=6),
    st.integers(0, 20000),
)
def test_remaining_positive_for_any_distribution(values: list[float], generated: int) -> None:
    values = sorted(values)
    levels = [(i + 1) / (len(values) + 1) for i in range(len(values))]
    e = LengthEstimate(values[len(values) // 2], quantiles=tuple(zip(levels, values, strict=True)))
    assert e.remaining(generated) > 0


def test_tail_extends_past_the_last_quantile() -> None:
    # Exponential tail through (0.5, 100) and (0.9, 300): beta = 200 / ln(5).
    e = LengthEstimate(100, quantiles=((0.5, 100), (0.9, 300)))
    beta = 200 / math.log(5)
    assert e.tail_scale() == pytest.approx(beta)
    assert e.quantile(0.99) == pytest.approx(300 + beta * math.log(10))
    # Past the whole distribution a request keeps the tail's mean residual life:
    # one that outlived its estimate is not treated as about to finish.
    assert e.remaining(100_000) == pytest.approx(beta)


def test_flat_top_has_no_tail() -> None:
    e = LengthEstimate(100, quantiles=((0.5, 100), (0.9, 100)))
    assert e.tail_scale() is None
    assert e.quantile(0.99) == 100
    assert e.remaining(500) == 1.0


@given(
    st.lists(st.floats(1, 1e4), min_size=1, max_size=6),
    st.integers(1, 20000),
    st.integers(1, 20000),
)
def test_conditional_total_never_below_generated(values: list[float], g1: int, g2: int) -> None:
    """The conditional estimate of the total length is never below what was generated."""
    values = sorted(values)
    levels = [(i + 1) / (len(values) + 1) for i in range(len(values))]
    e = LengthEstimate(values[len(values) // 2], quantiles=tuple(zip(levels, values, strict=True)))
    for g in (g1, g2):
        assert g + e.remaining(g) > g
