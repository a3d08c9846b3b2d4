"""`ssjf bench policies` on a tiny data directory in the real schema (and on real data if present)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ssjf.bench.policies import cell_policies
from ssjf.bench.policies_curves import judge
from ssjf.bench.policies_matrix import ENGINE_PRESETS, BenchPolicy, matrix_policies
from ssjf.bench.policies_rows import ROW_FIELDS, cell_rows
from ssjf.bench.policies_workloads import WorkloadConfig, build_workloads, in_families
from ssjf.cli import app
from ssjf.metrics.compare import MIN_ORACLE_GAIN
from ssjf.policies import DEFAULT_POLICY
from ssjf.predict.split import prompt_key
from ssjf.workload.data import find_data_file
from tests.predict.factories import synthetic

ALPACA_GENERATORS = ("gpt4_1106_preview", "claude-2.1", "gen-a", "gen-b", "gen-c", "gen-d")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")


def _records(
    prompts: list[str], lengths: list[float], models: list[str], **extra: Any
) -> list[dict[str, Any]]:
    n_models = len(set(models))
    return [
        {
            "prompt_id": i // n_models,
            "generator": m,
            "instruction": p,
            "output": "...",
            "prompt_tokens": 5 + len(p) // 4,
            "output_tokens": int(n),
            **extra,
        }
        for i, (p, n, m) in enumerate(zip(prompts, lengths, models, strict=True))
    ]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AlpacaEval, FLASK (repeating AlpacaEval texts), ShareGPT (one leaking text), Azure code."""
    root = tmp_path / "data"
    p, n, m = synthetic(n_prompts=40, models=ALPACA_GENERATORS, seed=1)
    _write_jsonl(root / "prompts/alpaca_eval.jsonl.gz", _records(p, n, m, dataset="helpful"))
    fp, fn, fm = synthetic(n_prompts=20, models=("claude_v1", "gen-a"), seed=2)
    k = len(ALPACA_GENERATORS)
    fp[:6] = [p[i * k] for i in range(3) for _ in range(2)]  # AlpacaEval prompts, verbatim
    _write_jsonl(root / "prompts/flask.jsonl.gz", _records(fp, fn, fm, task="t"))
    sp, sn, sm = synthetic(n_prompts=30, models=("chatgpt",), seed=3)
    sp[0] = p[0].upper() + "!"  # the same text by prompt_key: must be dropped
    _write_jsonl(root / "prompts/sharegpt_sample.jsonl.gz", _records(sp, sn, sm))
    rng = np.random.default_rng(4)
    trace = root / "traces/azure_llm_2023_code.csv"
    trace.parent.mkdir(parents=True, exist_ok=True)
    with trace.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        t = 0.0
        for _ in range(500):
            t += float(rng.exponential(0.5))
            ctx = min(int(rng.lognormal(7.0, 1.0)) + 1, 8000)  # fits the KV-bounded engine
            w.writerow(
                [f"2023-11-16 18:{int(t // 60):02d}:{t % 60:09.6f}", ctx, int(rng.integers(1, 200))]
            )
    monkeypatch.setenv("SSJF_DATA_DIR", str(root))
    return root


def _invoke(args: list[str]) -> None:
    res = CliRunner().invoke(app, ["bench", "policies", "--quick", *args])
    assert res.exit_code == 0, res.output


def _strip_timing(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: _strip_timing(v)
            for k, v in obj.items()
            if not k.endswith("wall_s") and k not in ("timing", "machine", "command")
        }
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def test_quick_end_to_end_json_rows_curves_and_determinism(data_dir: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    _invoke(["--json", str(first)])
    doc = json.loads(first.read_text())
    assert doc["default_policy"] == DEFAULT_POLICY and doc["row_fields"] == list(ROW_FIELDS)
    assert {w["workload"] for w in doc["workloads"]} == {
        "in-dist",
        "cross-dataset",
        "unseen-models",
        "long-prompts",
    }
    assert doc["rows"] and doc["seeds"] == [0, 1]
    for row in doc["rows"]:
        assert list(row) == list(ROW_FIELDS)  # exactly the documented fields, in order
        assert row["oracle"] in ("sjf",) or row["oracle"].startswith("srpt@preemption=")
    fcfs = [r for r in doc["rows"] if r["policy"] == "fcfs"]
    assert len(fcfs) == 4 * 2  # 4 workloads x 2 engines x 1 load x 1 arrival process
    for r in doc["rows"]:
        if r["policy"] == "sjf" and r["oracle_gain_fraction"] is not None:
            assert r["oracle_gain_fraction"] == pytest.approx(1.0)
    # Every curve cell has the default policy's curve on the predictor and on the truth.
    for cell in doc["curve_cells"]:
        mine = [
            c
            for c in doc["curves"]
            if (c["workload"], c["engine"]) == (cell["workload"], cell["engine"])
        ]
        assert {c["estimates"] for c in mine if c["knob"] == "tail"} == {"predictor", "truth"}
        assert {c["estimates"] for c in mine if c["knob"] == "max_wait"} == {"predictor", "truth"}
        truth_off = [
            c
            for c in mine
            if c["estimates"] == "truth" and c["bound"] is None and c["knob"] == "max_wait"
        ]
        # Plain ssjf (the guard's knob) with no bound fed the truth is oracle SJF.
        assert truth_off[0]["jct_mean"] == pytest.approx(cell["sjf_jct_mean"])
    assert len(doc["judged"]) == len(doc["curve_cells"]) == 8
    _invoke(["--json", str(second)])
    assert _strip_timing(json.loads(second.read_text())) == _strip_timing(doc)


def test_quick_plots(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    _invoke(["--workloads", "in-dist", "--engines", "serial", "--plot", str(plots)])
    names = {p.name for p in plots.iterdir()}
    assert "tradeoff_in-dist_serial.png" in names
    assert {
        "in-dist_serial_poisson_0.9_jct_ccdf.png",
        "in-dist_serial_poisson_0.9_paired_vs_fcfs.png",
    } <= names


def _check_disjoint(cfg: WorkloadConfig) -> None:
    wls = {w.name: w for w in build_workloads(["in-dist", "cross-dataset", "unseen-models"], cfg)}
    for w in wls.values():
        assert w.pool.prompts is not None and w.pool.estimates is not None
        served = {prompt_key(p) for p in w.pool.prompts}
        assert not served & w.train_keys, w.name
        assert w.describe["leaked_served_prompts"] == 0
        assert len(w.pool.estimates) == len(w.pool)
    unseen = wls["unseen-models"]
    held = unseen.describe["held_out_generators"]
    assert held and not set(held) & unseen.train_models
    assert not any(in_families(m, cfg.unseen_families) for m in unseen.train_models)
    served_models = set(unseen.pool.models or [])
    assert served_models & set(held) and served_models - set(held)  # a mixed queue
    assert set(wls["in-dist"].pool.models or []) == {cfg.generator}


def test_predictors_never_saw_the_served_prompts_or_generators(data_dir: Path) -> None:
    _check_disjoint(WorkloadConfig())
    cross = build_workloads(["cross-dataset"], WorkloadConfig())[0]
    assert cross.describe["served_records_dropped_as_training_text"] == 1


@pytest.mark.skipif(
    find_data_file("prompts/flask.jsonl.gz") is None,
    reason="real data not found: set SSJF_DATA_DIR",
)
def test_real_data_workloads_are_disjoint() -> None:
    # FLASK repeats hundreds of AlpacaEval prompts: the real test of the text check.
    _check_disjoint(WorkloadConfig(max_train=500))


def test_long_prompts_train_on_the_first_half_in_time(data_dir: Path) -> None:
    wl = build_workloads(["long-prompts"], WorkloadConfig())[0]
    assert len(wl.pool) == 250 and wl.bursty.kind == "trace"
    assert wl.describe["train_records"] == 250


def _summary(policy: str, seed: int, jct: float) -> dict[str, Any]:
    return {"policy": policy, "seed": seed, "jct_mean": jct, "jct_p99": 2 * jct}


def test_oracle_gain_fraction_is_null_when_the_oracle_gains_under_5_percent() -> None:
    key = {"engine": "serial", "workload": "w", "load": 0.9, "arrivals": "poisson"}
    pols = [BenchPolicy.parse(p) for p in ("fcfs", "sjf", "ssjf")]
    small = [_summary("fcfs", 0, 100.0), _summary("sjf", 0, 97.0), _summary("ssjf", 0, 98.0)]
    rows, seeds = cell_rows(key, pols, small)
    assert all(r["oracle_gain_fraction"] is None for r in rows)
    assert all(r["goodput"] is None for r in rows)  # no SLO figure in these summaries: null
    big = [_summary("fcfs", s, 100.0) for s in (0, 1)]
    big += [_summary("sjf", 0, 80.0), _summary("sjf", 1, 60.0)]
    big += [_summary("ssjf", 0, 90.0), _summary("ssjf", 1, 90.0)]
    rows, seeds = cell_rows(key, pols, big)
    by = {r["policy"]: r for r in rows}
    assert by["ssjf"]["oracle_gain_fraction"] == pytest.approx(10 / 30)  # on seed means
    assert by["sjf"]["jct_mean"] == pytest.approx(70.0)
    assert len(seeds) == 6 and {s["seed"] for s in seeds} == {0, 1}


def test_policy_texts_set_entry_fields_and_pick_their_oracle() -> None:
    pre = BenchPolicy.parse("ssrpt@preemption=on")
    assert pre.entry().preemption is not None and pre.oracle.startswith("srpt@preemption=max=")
    assert BenchPolicy.parse("ssjf:calibrate=true").entry().calibrate is True
    assert BenchPolicy.parse("ssjf:tail=1.1").with_params(tail=None).text == "ssjf"
    with pytest.raises(ValueError, match="not a run setting"):
        BenchPolicy.parse("ssjf@nonsense=1")
    with pytest.raises(ValueError, match="unknown policy"):
        BenchPolicy.parse("lottery")
    texts = [p.text for p in matrix_policies(["ssrpt@preemption=on"])]
    assert texts[:2] == ["fcfs", "sjf"] and pre.oracle in texts
    batch = cell_policies(matrix_policies(["ssrpt@preemption=on"]), ENGINE_PRESETS["batch"])
    assert all(p.preemption is None for p in batch)  # the batch engine cannot preempt


def _point(policy: str, est: str, bound: float | None, p99: float, share: float) -> dict[str, Any]:
    return {
        "policy": policy,
        "knob": "tail",
        "estimates": est,
        "bound": bound,
        "p99_vs_fcfs": p99,
        "oracle_share": share,
    }


def test_judge_takes_the_best_share_within_each_tail_budget() -> None:
    cell = {"engine": "serial", "workload": "w", "load": 0.9, "arrivals": "poisson"}
    rows = [
        _point("ssjf", "predictor", 1.0, 1.0, 0.0),
        _point("ssjf", "predictor", 1.1, 1.08, 0.4),
        _point("ssjf", "predictor", 2.0, 1.9, 0.7),
        _point("ssjf", "predictor", None, 3.0, 0.9),
        _point("ssjf", "truth", 1.1, 1.1, 0.6),
        _point("ssjf", "truth", None, 2.5, 1.0),
    ]
    out = judge({**cell, "oracle_sjf_gain": 0.3}, rows, "ssjf", None)
    assert out["default_share_at_1_1x"] == 0.4 and out["default_tail_at_1_1x"] == 1.1
    assert out["truth_share_at_1_1x"] == 0.6
    assert out["ratio_to_truth"] == pytest.approx(0.4 / 0.6)
    assert out["mean_first_share_at_2x"] == 0.7
    assert out["meets"] == {
        "default_share_at_1_1x>=0.5": False,
        "ratio_to_truth>=0.75": False,
        "mean_first_share_at_2x>=0.8": False,
    }
    small = judge({**cell, "oracle_sjf_gain": 0.05}, rows, "ssjf", None)
    assert small["judged"] is False and "default_share_at_1_1x" not in small


@settings(max_examples=60, deadline=None)
@given(
    fcfs=st.floats(1.0, 1e4),
    oracle_cut=st.floats(0.0, 0.9),
    policy_cut=st.floats(-0.5, 0.9),
)
def test_fraction_is_null_exactly_when_the_oracle_gain_is_under_the_threshold(
    fcfs: float, oracle_cut: float, policy_cut: float
) -> None:
    key = {"engine": "serial", "workload": "w", "load": 0.9, "arrivals": "poisson"}
    pols = [BenchPolicy.parse(p) for p in ("fcfs", "sjf", "ssjf")]
    per_seed = [
        _summary("fcfs", 0, fcfs),
        _summary("sjf", 0, fcfs * (1 - oracle_cut)),
        _summary("ssjf", 0, fcfs * (1 - policy_cut)),
    ]
    rows, _ = cell_rows(key, pols, per_seed)
    frac = {r["policy"]: r["oracle_gain_fraction"] for r in rows}["ssjf"]
    assert all(list(r) == list(ROW_FIELDS) for r in rows)
    if oracle_cut < MIN_ORACLE_GAIN * (1 - 1e-9):
        assert frac is None
    elif oracle_cut > MIN_ORACLE_GAIN * (1 + 1e-9):
        assert frac == pytest.approx(policy_cut / oracle_cut, rel=1e-6, abs=1e-9)
