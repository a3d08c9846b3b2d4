"""`ssjf bench predictor` end to end on a tiny prompts directory in the real schema."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssjf.bench.predictor import BenchConfig, run_bench
from ssjf.cli import app
from tests.predict.factories import synthetic

KEYS = {"family", "dataset", "tau_mean", "mae", "latency_p50_ms", "prompts_per_s"}


def _write_dataset(root: Path, name: str, sub_key: str | None, n_prompts: int, seed: int) -> None:
    prompts, lengths, models = synthetic(n_prompts=n_prompts, models=("gen-a", "gen-b"), seed=seed)
    path = root / "prompts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for i, (p, n, m) in enumerate(zip(prompts, lengths, models, strict=True)):
            rec = {
                "prompt_id": str(i // 2),
                "generator": m,
                "instruction": p,
                "output": "...",
                "prompt_tokens": 5,
                "output_tokens": int(n),
            }
            if sub_key:
                rec[sub_key] = "sub"
            fh.write(json.dumps(rec) + "\n")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _write_dataset(tmp_path, "alpaca_eval.jsonl.gz", "dataset", 60, 1)
    _write_dataset(tmp_path, "flask.jsonl.gz", "task", 40, 2)
    _write_dataset(tmp_path, "sharegpt_sample.jsonl.gz", None, 20, 3)
    monkeypatch.setenv("SSJF_DATA_DIR", str(tmp_path))
    return tmp_path


def test_bench_rows_and_end_to_end(data_dir: Path) -> None:
    cfg = BenchConfig(
        families=("constant", "tfidf"), e2e_requests=100, e2e_seeds=2, latency_single=10
    )
    result = run_bench(cfg)
    rows = result["rows"]
    assert {(r["family"], r["dataset"]) for r in rows} >= {
        ("tfidf", "alpaca_eval"),
        ("tfidf", "flask"),
        ("constant", "alpaca_eval"),
        ("reference:other-models-mean", "flask"),
    }
    for r in rows:
        assert set(r) >= KEYS
    tfidf = next(r for r in rows if r["family"] == "tfidf" and r["dataset"] == "alpaca_eval")
    assert tfidf["tau_mean"] > 0.3 and tfidf["latency_p50_ms"] > 0 and tfidf["prompts_per_s"] > 0
    assert tfidf["n_test"] == 30  # 25% of 60 prompt ids x 2 generators
    assert result["best_family"] == "tfidf"
    e2e = result["e2e"]
    assert e2e["family"] == "tfidf" and len(e2e["per_seed"]) == 2
    assert math.isfinite(e2e["oracle_gain_fraction"])
    for seed in e2e["per_seed"]:  # the oracle is never beaten by FCFS
        assert seed["jct_mean_sjf"] <= seed["jct_mean_fcfs"]


def test_bench_cli_json(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "predictor",
            "--families",
            "tfidf,no-such",
            "--no-e2e",
            "--export",
            str(tmp_path / "exp"),
            "--latency-calls",
            "10",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert "no-such" in data["failures"]
    assert any(r["family"] == "tfidf" for r in data["rows"])
    # the export replays in `ssjf simulate` with the saved predictor
    heldout = tmp_path / "exp" / "alpaca_eval_heldout.jsonl"
    assert heldout.is_file(), res.output
    assert len(heldout.read_text().splitlines()) == 30
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "-w",
            f"jsonl:{heldout}",
            "--predictor",
            str(tmp_path / "exp" / "predictor-tfidf"),
            "-e",
            "serial",
            "--load",
            "0.9",
            "-n",
            "60",
            "--seeds",
            "1",
            "-p",
            "fcfs,ssjf,sjf",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "ssjf" in res.output


def test_export_writes_the_predictor_and_shuffled_held_out_rows(tmp_path: Path) -> None:
    from ssjf.bench.predictor import export_for_simulate
    from ssjf.predict import load_predictor, make_predictor
    from ssjf.predict.data import LengthData

    # Held-out sets come grouped by generator; the export must not keep that order
    # (`ssjf simulate` samples a pool in file order: one generator after another).
    models = ["gen-a"] * 40 + ["gen-b"] * 40
    data = LengthData(
        prompts=[f"prompt {i % 40}" for i in range(80)],
        lengths=[10 + i for i in range(80)],
        models=list(models),
        prompt_ids=[str(i % 40) for i in range(80)],
        datasets=["alpaca_eval"] * 80,
    )
    pred = make_predictor("constant").fit(data.prompts, [float(n) for n in data.lengths], models)
    files = export_for_simulate(pred, {"alpaca_eval": data}, str(tmp_path))
    rows = [json.loads(line) for line in Path(files["alpaca_eval"]).read_text().splitlines()]
    got = sorted((r["prompt"], r["model"], r["output_tokens"], r["prompt_id"]) for r in rows)
    want = sorted(zip(data.prompts, models, data.lengths, data.prompt_ids, strict=True))
    assert got == want  # every record once
    first_half = [r["model"] for r in rows[:40]]
    assert 10 < first_half.count("gen-a") < 30  # interleaved, not grouped
    assert load_predictor(files["predictor"]).family == "constant"
