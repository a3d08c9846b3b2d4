"""Summaries, comparisons and seed aggregation on hand-computed cases."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssjf.metrics import (
    MIN_ORACLE_GAIN,
    SLO,
    add_comparisons,
    aggregate,
    oracle_gain_fraction,
    record_columns,
    relative_change,
    summarize,
    write_records,
)


@dataclass
class Run:
    arrival: np.ndarray
    first_scheduled: np.ndarray
    first_token: np.ndarray
    completion: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=int))
    prompt_tokens: np.ndarray = field(default_factory=lambda: np.array([1, 2, 3]))
    predicted_tokens: np.ndarray = field(default_factory=lambda: np.array([5.0, 6.0, 7.0]))


def three() -> Run:
    # Serial: job A (0..2), B arrives at 1 waits until 2 (2..3), C arrives 1.5 (3..7).
    return Run(
        arrival=np.array([0.0, 1.0, 1.5]),
        first_scheduled=np.array([0.0, 2.0, 3.0]),
        first_token=np.array([0.5, 2.5, 3.5]),
        completion=np.array([2.0, 3.0, 7.0]),
        output_tokens=np.array([4, 1, 9]),
        preemptions=np.array([0, 1, 2]),
    )


def test_summary_hand_computed() -> None:
    s = summarize(three())
    # JCTs 2, 2, 5.5
    assert s["jct_mean"] == pytest.approx(9.5 / 3)
    assert s["jct_p50"] == pytest.approx(2.0)
    assert s["jct_max"] == pytest.approx(5.5)
    assert s["jct_p99"] == pytest.approx(np.percentile([2, 2, 5.5], 99))
    # Queue waits 0, 1, 1.5
    assert s["queue_mean"] == pytest.approx(2.5 / 3)
    assert s["max_wait"] == pytest.approx(1.5)
    # TTFT 0.5, 1.5, 2.0
    assert s["ttft_mean"] == pytest.approx(4.0 / 3)
    # TPOT over jobs with > 1 token: A (2-0.5)/3 = 0.5, C (7-3.5)/8 = 0.4375
    assert s["tpot_mean"] == pytest.approx((0.5 + 0.4375) / 2)
    # Throughput: 3 completed over 7 - 0 seconds.
    assert s["throughput_rps"] == pytest.approx(3 / 7)
    assert s["preemptions"] == 3
    assert "goodput_rps" not in s


def test_goodput_under_slos() -> None:
    s = summarize(three(), SLO(jct_s=2.0, ttft_s=1.0))
    # Only A meets both (jct 2 <= 2, ttft 0.5 <= 1); B has ttft 1.5.
    assert s["slo_attainment"] == pytest.approx(1 / 3)
    assert s["goodput_rps"] == pytest.approx(1 / 7)
    s = summarize(three(), SLO(jct_s=2.0))
    assert s["goodput_rps"] == pytest.approx(2 / 7)


def test_unfinished_requests_excluded_from_latencies() -> None:
    run = three()
    run.completion = np.array([2.0, 3.0, np.inf])
    s = summarize(run)
    assert s["completed"] == 2
    assert s["jct_mean"] == pytest.approx(2.0)
    assert s["throughput_rps"] == pytest.approx(2 / 3)


def test_relative_change_and_oracle_gain() -> None:
    assert relative_change(6.0, 10.0) == pytest.approx(-0.4)
    assert math.isnan(relative_change(1.0, 0.0))
    assert oracle_gain_fraction(8.0, 10.0, 6.0) == pytest.approx(0.5)
    assert oracle_gain_fraction(6.0, 10.0, 6.0) == pytest.approx(1.0)
    assert oracle_gain_fraction(11.0, 10.0, 6.0) == pytest.approx(-0.25)
    assert math.isnan(oracle_gain_fraction(8.0, 10.0, 10.0))


def test_add_comparisons() -> None:
    summ = {
        "fcfs": {"jct_mean": 10.0, "jct_p99": 50.0, "queue_mean": 4.0, "ttft_mean": 5.0},
        "sjf": {"jct_mean": 6.0, "jct_p99": 60.0, "queue_mean": 1.0, "ttft_mean": 2.0},
        "ssjf": {"jct_mean": 7.0, "jct_p99": 55.0, "queue_mean": 2.0, "ttft_mean": 3.0},
    }
    add_comparisons(summ)
    assert summ["fcfs"]["jct_mean_change_vs_fcfs"] == 0.0
    assert summ["sjf"]["jct_mean_change_vs_fcfs"] == pytest.approx(-0.4)
    assert summ["ssjf"]["jct_p99_change_vs_fcfs"] == pytest.approx(0.1)
    assert summ["ssjf"]["oracle_gain_fraction"] == pytest.approx(0.75)
    assert summ["sjf"]["oracle_gain_fraction"] == pytest.approx(1.0)
    assert summ["fcfs"]["oracle_gain_fraction"] == pytest.approx(0.0)


def test_aggregate_mean_and_std() -> None:
    agg = aggregate([{"jct_mean": 1.0, "x": 2.0}, {"jct_mean": 3.0, "x": math.nan}])
    assert agg["seeds"] == 2
    assert agg["jct_mean"] == pytest.approx(2.0)
    assert agg["jct_mean_std"] == pytest.approx(math.sqrt(2.0))
    assert agg["x"] == 2.0 and agg["x_std"] == 0.0
    assert aggregate([{"a": 5.0}])["a_std"] == 0.0


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_write_records(tmp_path: Path, ext: str) -> None:
    table = record_columns(three(), {"policy": "fcfs", "engine": "serial", "seed": 0, "load": 0.8})
    path = write_records(tmp_path / f"r.{ext}", [table, table])
    if ext == "jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert float(rows[2]["jct"]) == pytest.approx(5.5)
    assert float(rows[1]["queue_wait"]) == pytest.approx(1.0)
    assert int(rows[2]["preemptions"]) == 2
    assert rows[0]["policy"] == "fcfs"


@st.composite
def runs(draw: st.DrawFn) -> Run:
    n = draw(st.integers(1, 30))
    arrival = np.sort(np.asarray(draw(st.lists(st.floats(0, 100), min_size=n, max_size=n))))
    wait = np.asarray(draw(st.lists(st.floats(0, 50), min_size=n, max_size=n)))
    prefill = np.asarray(draw(st.lists(st.floats(0.001, 5), min_size=n, max_size=n)))
    decode = np.asarray(draw(st.lists(st.floats(0, 50), min_size=n, max_size=n)))
    out = np.asarray(draw(st.lists(st.integers(1, 500), min_size=n, max_size=n)))
    first = arrival + wait
    return Run(
        arrival=arrival,
        first_scheduled=first,
        first_token=first + prefill,
        completion=first + prefill + decode,
        output_tokens=out,
        preemptions=np.zeros(n, dtype=int),
        prompt_tokens=np.zeros(n, dtype=int),
        predicted_tokens=np.zeros(n),
    )


@given(runs())
def test_summary_invariants(run: Run) -> None:
    s = summarize(run, SLO(jct_s=10.0))
    assert s["jct_p50"] <= s["jct_p90"] + 1e-9 <= s["jct_p99"] + 2e-9 <= s["jct_max"] + 3e-9
    assert s["queue_mean"] <= s["ttft_mean"] + 1e-9 <= s["jct_mean"] + 2e-9
    assert s["max_wait"] <= s["jct_max"] + 1e-9
    assert 0.0 <= s["slo_attainment"] <= 1.0
    if np.isfinite(s["throughput_rps"]):
        assert s["goodput_rps"] <= s["throughput_rps"] + 1e-12


@given(st.floats(0, 100), st.floats(0, 100), st.floats(0, 100))
def test_oracle_gain_is_affine_in_policy_value(value: float, fcfs: float, oracle: float) -> None:
    g = oracle_gain_fraction(value, fcfs, oracle)
    if fcfs > oracle and fcfs - oracle >= MIN_ORACLE_GAIN * fcfs:
        assert g == pytest.approx((fcfs - value) / (fcfs - oracle))
        assert (g <= 1.0 + 1e-12) == (value >= oracle - 1e-12 * max(1.0, abs(oracle)))
    else:
        assert math.isnan(g)


def test_write_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed")
    table = record_columns(three(), {"policy": "sjf", "engine": "serial", "seed": 1, "load": 0.9})
    path = write_records(tmp_path / "r.parquet", [table])
    back = pq.read_table(path).to_pydict()
    assert back["jct"] == pytest.approx([2.0, 2.0, 5.5])
    assert back["policy"] == ["sjf"] * 3
