"""`ssjf bench calibration`: the windowed curve, its share arithmetic, the constructed stream."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ssjf.bench.calibration_curve import (
    WINDOW_FIELDS,
    CalibrationConfig,
    curve_policies,
    span_figures,
    stretch_held_out,
    window_bounds,
)
from ssjf.bench.policies_workloads import BenchWorkload
from ssjf.cli import app
from ssjf.estimate import LengthEstimate
from ssjf.metrics.compare import MIN_ORACLE_GAIN
from ssjf.policies import DEFAULT_POLICY
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.data import find_data_file
from ssjf.workload.pool import Pool

# The synthetic data directory in the real schema (AlpacaEval with claude and gpt4 generators).
from tests.bench.test_bench_policies import _strip_timing, data_dir  # noqa: F401


def _invoke(args: list[str]) -> None:
    res = CliRunner().invoke(app, ["bench", "calibration", "--quick", *args])
    assert res.exit_code == 0, res.output


def _check_doc(doc: dict[str, Any]) -> None:
    cfg = doc["config"]
    assert doc["default_policy"] == DEFAULT_POLICY
    assert cfg["policies"] == list(curve_policies())
    assert f"{DEFAULT_POLICY}:calibrate=true" in cfg["policies"]
    assert [s["workload"] for s in doc["streams"]] == ["unseen-models", "unseen-models-x3"]
    assert [s["constructed"] for s in doc["streams"]] == [False, True]
    assert len(doc["cells"]) == 2 * len(cfg["engines"])
    for cell in doc["cells"]:
        wins = cell["windows"]
        # The windows partition the run's requests, in order.
        assert wins[0]["start"] == 0 and wins[-1]["stop"] == cfg["requests"]
        for a, b in pairwise(wins):
            assert a["stop"] == b["start"] and a["stop"] - a["start"] == cfg["window"]
        assert [w["window"] for w in wins] == list(range(len(wins)))
        for span in (cell["whole_run"], cell["after_warmup"], *(w["policies"] for w in wins)):
            assert set(span) == set(cfg["policies"])
            for label, figs in span.items():
                assert list(figs) == list(WINDOW_FIELDS)
                assert figs["jct_mean"] > 0 and figs["jct_p99"] >= 0
                if label == "fcfs":
                    assert figs["p99_vs_fcfs"] == pytest.approx(1.0)
                if label == "sjf" and figs["oracle_gain_share"] is not None:
                    assert figs["oracle_gain_share"] == pytest.approx(1.0)
                if "calibrate=true" not in label:
                    assert figs["held_out_scale"] is None
        # A calibrated run has learnt a scale for the held-out generators by the end.
        last = cell["whole_run"]["ssjf:calibrate=true"]["held_out_scale"]
        assert last is not None and last > 0


def test_quick_writes_the_documented_json_and_is_deterministic(
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    _invoke(["--json", str(first)])
    doc = json.loads(first.read_text())
    _check_doc(doc)
    _invoke(["--json", str(second)])
    assert _strip_timing(json.loads(second.read_text())) == _strip_timing(doc)


def test_quick_plot(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip("matplotlib")
    out = tmp_path / "curve.png"
    _invoke(["--plot", str(out), "--requests", "120", "--window", "40"])
    assert out.stat().st_size > 1000


@pytest.mark.skipif(
    find_data_file("prompts/alpaca_eval.jsonl.gz") is None,
    reason="real data not found: set SSJF_DATA_DIR",
)
def test_quick_on_real_data(tmp_path: Path) -> None:
    out = tmp_path / "real.json"
    _invoke(["--json", str(out)])
    doc = json.loads(out.read_text())
    _check_doc(doc)
    x3 = doc["cells"][1]["whole_run"]["ssjf:calibrate=true"]["held_out_scale"]
    plain = doc["cells"][0]["whole_run"]["ssjf:calibrate=true"]["held_out_scale"]
    assert x3 > plain  # 3x longer answers are learnt as a larger scale


@given(n=st.integers(0, 2000), window=st.integers(1, 500))
def test_windows_partition_the_requests(n: int, window: int) -> None:
    bounds = window_bounds(n, window)
    covered = [i for a, b in bounds for i in range(a, b)]
    assert covered == list(range(n))
    assert all(0 < b - a <= window for a, b in bounds)
    assert all(b - a == window for a, b in bounds[:-1])


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        window_bounds(10, 0)
    with pytest.raises(ValueError, match="warmup"):
        CalibrationConfig(requests=100, warmup=100)
    with pytest.raises(ValueError, match="streams"):
        CalibrationConfig(streams=("in-dist",))
    with pytest.raises(ValueError, match="sjf"):
        CalibrationConfig(policies=("fcfs", "ssjf"))


_jcts = st.lists(st.floats(1.0, 1000.0), min_size=2, max_size=30)


@settings(max_examples=60, deadline=None)
@given(fcfs=_jcts, sjf_cut=st.floats(0.0, 0.9), pol_mix=st.floats(-0.5, 1.5), data=st.data())
def test_window_share_is_fcfs_minus_policy_over_fcfs_minus_oracle(
    fcfs: list[float], sjf_cut: float, pol_mix: float, data: st.DataObject
) -> None:
    f = np.array(fcfs)
    s = f * (1.0 - sjf_cut)
    p = f + pol_mix * (s - f) + data.draw(st.floats(-1.0, 1.0))
    start = data.draw(st.integers(0, len(f) - 1))
    stop = data.draw(st.integers(start + 1, len(f)))
    figs = span_figures({"fcfs": [f], "sjf": [s], "pol": [p]}, start, stop)
    fm, sm, pm = (float(np.mean(x[start:stop])) for x in (f, s, p))
    share = figs["pol"]["oracle_gain_share"]
    if fm - sm < MIN_ORACLE_GAIN * fm:
        assert share is None
    else:
        assert share == pytest.approx((fm - pm) / (fm - sm))
        assert figs["sjf"]["oracle_gain_share"] == pytest.approx(1.0)
        assert figs["fcfs"]["oracle_gain_share"] == pytest.approx(0.0, abs=1e-9)


def test_span_figures_average_per_seed_values() -> None:
    fcfs = [np.array([10.0, 10.0, 30.0]), np.array([20.0, 20.0, 20.0])]
    sjf = [np.array([5.0, 5.0, 5.0]), np.array([10.0, 10.0, 10.0])]
    pol = [np.array([10.0, 5.0, 30.0]), np.array([20.0, 10.0, 10.0])]
    figs = span_figures({"fcfs": fcfs, "sjf": sjf, "pol": pol}, 1, 3)
    # Seed means on requests 1..2: fcfs 20, 20; sjf 5, 10; pol 17.5, 10.
    assert figs["pol"]["jct_mean"] == pytest.approx(13.75)
    assert figs["pol"]["oracle_gain_share"] == pytest.approx((20 - 13.75) / (20 - 7.5))
    assert figs["fcfs"]["jct_p99"] == pytest.approx((np.percentile([10, 30], 99) + 20) / 2)
    assert figs["pol"]["held_out_scale"] is None


def test_span_figures_mean_held_out_scale_ignores_other_requests() -> None:
    one = [np.array([1.0, 2.0, 3.0, 4.0])]
    scales = {"cal": [np.array([math.nan, 2.0, 4.0, math.nan])]}
    figs = span_figures({"fcfs": one, "sjf": one, "cal": one}, 0, 4, scales=scales)
    assert figs["cal"]["held_out_scale"] == pytest.approx(3.0)
    assert figs["cal"]["oracle_gain_share"] is None  # the oracle gains nothing here
    none = span_figures({"fcfs": one, "sjf": one, "cal": one}, 0, 1, scales=scales)
    assert none["cal"]["held_out_scale"] is None


def test_the_constructed_stream_stretches_only_the_held_out_generators() -> None:
    models: list[str | None] = ["claude-2", "seen", "gpt4", "seen"]
    ests = [LengthEstimate(point=float(x)) for x in (10, 20, 30, 40)]
    pool = Pool(
        name="p",
        prompt_tokens=np.array([5, 5, 5, 5]),
        output_tokens=np.array([100, 200, 300, 400]),
        models=models,
        estimates=ests,
    )
    wl = BenchWorkload(
        name="unseen-models",
        pool=pool,
        bursty=ArrivalSpec("gamma", 3.0),
        describe={"workload": "unseen-models", "held_out_generators": ["claude-2", "gpt4"]},
        train_keys=frozenset(),
        train_models=frozenset({"seen"}),
    )
    x3 = stretch_held_out(wl)
    assert x3.pool.output_tokens.tolist() == [300, 200, 900, 400]
    assert x3.pool.estimates == ests and x3.describe["constructed"] is True
    assert x3.describe["estimate_tau"] < 1.0  # the estimates ranked the unstretched queue perfectly
    assert "constructed" in x3.pool.name and x3.name == "unseen-models-x3"
    assert pool.output_tokens.tolist() == [100, 200, 300, 400]  # the original is untouched
