"""The oracle-gain fraction is missing (table "—", JSON null) when the oracle gains too little."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssjf.cli.sim_report import results_table, write_json
from ssjf.metrics import MIN_ORACLE_GAIN, add_comparisons, oracle_gain_fraction


def test_threshold_is_a_share_of_fcfs() -> None:
    assert 0 < MIN_ORACLE_GAIN < 0.5
    # The oracle gains 1%: a policy 2% worse than FCFS would read as "-200%".
    assert math.isnan(oracle_gain_fraction(10.2, 10.0, 9.9))
    just_below = 10.0 * (1 - MIN_ORACLE_GAIN) + 1e-9
    assert math.isnan(oracle_gain_fraction(9.9, 10.0, just_below))
    at = 10.0 * (1 - MIN_ORACLE_GAIN)
    assert oracle_gain_fraction(at, 10.0, at) == pytest.approx(1.0)
    assert oracle_gain_fraction(9.0, 10.0, 8.0) == pytest.approx(0.5)


@given(st.floats(0.1, 1e4), st.floats(0, MIN_ORACLE_GAIN * 0.999), st.floats(0, 1e4))
def test_small_gains_are_never_divided_by(fcfs: float, share: float, value: float) -> None:
    assert math.isnan(oracle_gain_fraction(value, fcfs, fcfs * (1 - share)))


def test_missing_gain_prints_a_dash_and_writes_null(tmp_path: Path) -> None:
    summaries = {
        "fcfs": {"jct_mean": 10.0, "jct_p99": 30.0, "queue_mean": 1.0, "ttft_mean": 1.0},
        "ssjf": {"jct_mean": 10.3, "jct_p99": 31.0, "queue_mean": 1.1, "ttft_mean": 1.1},
        "sjf": {"jct_mean": 9.8, "jct_p99": 29.0, "queue_mean": 0.9, "ttft_mean": 0.9},
    }
    add_comparisons(summaries)
    assert all(math.isnan(s["oracle_gain_fraction"]) for s in summaries.values())
    rows = [
        {"policy": k, **v, "jct_change_vs_fcfs": v["jct_mean_change_vs_fcfs"]}
        for k, v in summaries.items()
    ]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(results_table(rows, "t"))
    ssjf_line = next(ln for ln in console.export_text().splitlines() if "ssjf" in ln)
    cells = [c.strip() for c in ssjf_line.split("│")]
    assert cells[6] == "—"  # the "oracle gain" column
    assert "+3.0%" in cells  # "Δ vs FCFS" still shown
    path = write_json(tmp_path / "r.json", {"rows": rows})
    back = json.loads(path.read_text())["rows"]
    assert all(r["oracle_gain_fraction"] is None for r in back)
