"""Arrival processes: rates, burstiness, determinism, trace parsing and scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssjf.workload.arrivals import (
    ArrivalSpec,
    gamma_arrivals,
    parse_timestamps,
    poisson_arrivals,
    scale_trace,
    uniform_arrivals,
)
from ssjf.workload.data import DataError


def _gaps(t: np.ndarray) -> np.ndarray:
    return np.diff(t)


def test_poisson_rate_and_cv() -> None:
    t = poisson_arrivals(50_000, 4.0, np.random.default_rng(0))
    g = _gaps(t)
    assert t[0] == 0.0
    assert g.mean() == pytest.approx(0.25, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_rate_and_cv(cv: float) -> None:
    t = gamma_arrivals(100_000, 2.0, cv, np.random.default_rng(1))
    g = _gaps(t)
    assert g.mean() == pytest.approx(0.5, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.06)


def test_uniform_is_evenly_spaced() -> None:
    np.testing.assert_allclose(uniform_arrivals(4, 2.0), [0.0, 0.5, 1.0, 1.5])


def test_same_seed_same_times() -> None:
    a = gamma_arrivals(100, 1.0, 2.0, np.random.default_rng(7))
    b = gamma_arrivals(100, 1.0, 2.0, np.random.default_rng(7))
    assert np.array_equal(a, b)


@given(
    st.integers(0, 200), st.floats(0.01, 100), st.sampled_from(["poisson", "gamma:2", "uniform"])
)
def test_arrivals_nondecreasing_and_sized(n: int, rate: float, kind: str) -> None:
    t = ArrivalSpec.parse(kind).generate(n, rate, np.random.default_rng(0))
    assert t.shape == (n,)
    assert np.all(np.diff(t) >= 0)


def test_bad_rate_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        poisson_arrivals(10, 0.0, np.random.default_rng(0))


def test_azure_timestamps_parse_to_seconds() -> None:
    t = parse_timestamps(
        ["2023-11-16 18:15:46.6805900", "2023-11-16 18:15:50.9951690", "2023-11-16 18:16:46"]
    )
    np.testing.assert_allclose(t, [0.0, 4.314579, 59.31941], atol=1e-6)


def test_numeric_timestamps() -> None:
    np.testing.assert_allclose(parse_timestamps(["10.5", "12", "11"]), [0.0, 1.5, 0.5])


def test_bad_timestamp_names_file_line_field() -> None:
    with pytest.raises(DataError) as exc:
        parse_timestamps(["2023-11-16 18:15:46", "yesterday"], file="t.csv", lines=[2, 3])
    msg = str(exc.value)
    assert "t.csv" in msg and "line 3" in msg and "TIMESTAMP" in msg and "yesterday" in msg


def test_scale_trace_hits_target_rate_and_keeps_shape() -> None:
    raw = np.array([5.0, 6.0, 6.5, 9.0, 13.0])  # 4 gaps over 8 s = 0.5 req/s
    out = scale_trace(raw, 2.0)
    assert out[0] == 0.0
    assert (len(out) - 1) / out[-1] == pytest.approx(2.0)
    # Relative gap pattern preserved.
    np.testing.assert_allclose(_gaps(out) / _gaps(out).sum(), _gaps(raw) / _gaps(raw).sum())


def test_trace_spec_needs_timestamps() -> None:
    with pytest.raises(ValueError, match="timestamps"):
        ArrivalSpec.parse("trace").generate(3, 1.0, np.random.default_rng(0))


@pytest.mark.parametrize("bad", ["gamma:x", "gamma:-1", "weibull", "poisson:3"])
def test_bad_arrival_specs(bad: str) -> None:
    with pytest.raises(ValueError):
        ArrivalSpec.parse(bad)
