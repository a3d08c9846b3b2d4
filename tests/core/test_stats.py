"""ssjf.stats: the one percentile rule, summaries, relative change and Kendall tau-b."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.stats import describe, kendall_tau_b, mean, percentile, relative_change


def test_percentile_interpolates_linearly_between_closest_ranks() -> None:
    # position (n - 1) * q / 100: 1.5 for the median of four values -> halfway 2..3
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    st.floats(0, 100),
)
def test_percentile_is_numpys_default_rule_bit_for_bit(xs: list[float], q: float) -> None:
    # The simulator's reports used np.percentile before ssjf.stats existed: the seeded
    # figures of `ssjf bench paper` and `ssjf demo` must not move by one digit.
    assert percentile(xs, q) == float(np.percentile(np.asarray(xs), q))


def test_describe_gives_the_report_figures() -> None:
    s = describe(np.arange(1.0, 101.0))
    assert (s.n, s.mean, s.p50, s.max) == (100, 50.5, 50.5, 100.0)
    assert s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    empty = describe([])
    assert empty.n == 0 and all(math.isnan(v) for v in (empty.mean, empty.p99, empty.max))
    assert math.isnan(mean([]))


def test_relative_change() -> None:
    assert relative_change(6.0, 10.0) == pytest.approx(-0.4)
    assert relative_change(10.0, 10.0) == 0.0
    for value, base in ((1.0, 0.0), (1.0, math.nan), (math.inf, 1.0), (1.0, math.inf)):
        assert math.isnan(relative_change(value, base))


def test_kendall_tau_b_by_hand() -> None:
    assert kendall_tau_b([1, 2, 3], [10, 20, 30]) == 1.0
    assert kendall_tau_b([1, 2, 3], [30, 20, 10]) == -1.0
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # pairs of (1,2,3) vs (1,3,2): concordant (1,2),(1,3); discordant (2,3) -> (2-1)/3
    assert kendall_tau_b([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # ties: x=(1,1,2), y=(1,2,3): C=2 (pairs 1-3, 2-3), D=0, pair 1-2 tied in x only
    # tau_b = 2 / sqrt((2+0+1)*(2+0+0)) = 2/sqrt(6)
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau_b([1], [2]))
    with pytest.raises(ValueError):
        kendall_tau_b([1, 2], [1, 2, 3])


def test_kendall_tau_b_large_input_uses_the_fast_path_consistently() -> None:
    kendalltau = pytest.importorskip("scipy.stats").kendalltau
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, 4000).astype(float)
    y = x + rng.normal(0, 10, 4000)
    assert kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-9)
    small_x, small_y = x[:3000], y[:3000]  # the exact pairwise path
    assert kendall_tau_b(small_x, small_y) == pytest.approx(
        kendalltau(small_x, small_y).statistic, abs=1e-9
    )


def test_importing_stats_imports_no_numpy() -> None:
    code = "import sys, ssjf.stats; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
