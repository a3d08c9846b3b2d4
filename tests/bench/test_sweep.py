"""Parsing `--load 0.5,0.7,0.9` / `--rate 1,2` into sweep points."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssjf.bench.sweep import SweepPoint, describe_points, parse_values, sweep_points

positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(positive, min_size=1, max_size=6), st.sampled_from([",", ", ", " ,"]))
def test_parse_round_trips_and_drops_repeats(values: list[float], sep: str) -> None:
    parsed = parse_values(sep.join(repr(v) for v in values) + ",", "--load")
    assert parsed == tuple(dict.fromkeys(values))


@given(st.text(max_size=20))
def test_parse_never_accepts_a_non_positive_value(text: str) -> None:
    try:
        parsed = parse_values(text, "--load")
    except ValueError as exc:
        assert str(exc).startswith("--load:")
    else:
        assert parsed and all(v > 0 for v in parsed)


def test_rate_wins_and_points_describe_themselves() -> None:
    assert sweep_points("0.5,0.9", None) == [SweepPoint(0.5), SweepPoint(0.9)]
    points = sweep_points("0.5,0.9", "2")
    assert points == [SweepPoint(load=None, rate=2.0)] and points[0].key == "rate"
    assert describe_points(points) == "rate 2 req/s"
    assert describe_points(sweep_points("0.5,0.9", None)) == "loads 0.5, 0.9"
    with pytest.raises(ValueError, match="not a positive number"):
        parse_values("-1", "--load")
