"""`ssjf simulate`, `ssjf bench paper`, `ssjf demo` end to end on tiny inputs."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssjf.cli import app
from ssjf.estimate import LengthEstimate

runner = CliRunner()


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No data dir and an empty cache: nothing real can be found."""
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_simulate_synthetic_json_records_plot(tmp_path: Path, no_data: Path) -> None:
    out = invoke(
        "simulate", "-w", "synthetic", "-n", "200", "--seeds", "2", "-p", "fcfs,ssjf,sjf,hrrn",
        "--json", str(tmp_path / "r.json"), "--records", str(tmp_path / "rec.jsonl"),
        "--plot", str(tmp_path / "fig"), "--slo-jct", "20",
    )  # fmt: skip
    assert "SYNTHETIC" in out and "fcfs" in out
    data = json.loads((tmp_path / "r.json").read_text())
    rows = {r["policy"]: r for r in data["rows"]}
    assert set(rows) == {"fcfs", "ssjf", "sjf", "hrrn"}
    for key in (
        "jct_mean",
        "jct_p99",
        "jct_change_vs_fcfs",
        "oracle_gain_fraction",
        "goodput_rps",
        "jct_mean_std",
    ):
        assert key in rows["ssjf"], key
    assert rows["sjf"]["jct_mean"] <= rows["fcfs"]["jct_mean"]
    assert len(data["per_seed"]) == 8
    lines = (tmp_path / "rec.jsonl").read_text().splitlines()
    assert len(lines) == 200 * 2 * 4
    for name in ("jct_ccdf.png", "jct_mean_p99.png", "paired_vs_fcfs.png"):
        assert (tmp_path / "fig" / name).stat().st_size > 1000, name


def test_simulate_table_workload_with_columns(tmp_path: Path, no_data: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    lines = ["ts,ctx,gen"] + [
        f"{i * 0.5},{rng.integers(1, 100)},{rng.integers(1, 400)}" for i in range(100)
    ]
    path.write_text("\n".join(lines) + "\n")
    out = invoke(
        "simulate", "-w", f"csv:{path}", "--columns", "prompt_tokens=ctx,output_tokens=gen,arrival=ts",
        "--arrivals", "trace", "-n", "60", "--seeds", "1", "-p", "fcfs,sjf", "-e", "batch:4",
    )  # fmt: skip
    assert "batch:4" in out


def test_simulate_errors_are_clear(tmp_path: Path, no_data: Path) -> None:
    res = runner.invoke(app, ["simulate", "-w", "paper:4class"])
    assert res.exit_code == 2 and "paper:5class" in res.output
    res = runner.invoke(app, ["simulate", "-w", "alpaca"])
    assert (
        res.exit_code == 2
        and "alpaca_eval.jsonl.gz" in res.output
        and "SSJF_DATA_DIR" in res.output
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"output_tokens": 3}\n{"output_tokens": "x"}\n')
    res = runner.invoke(app, ["simulate", "-w", f"jsonl:{bad}"])
    assert res.exit_code == 2 and "line 2" in res.output and "output_tokens" in res.output
    res = runner.invoke(app, ["simulate", "-w", "synthetic", "-p", "fcfs,nope"])
    assert res.exit_code == 2 and "unknown policy" in res.output


class _FakePredictor:
    """Predicts the prompt's length in characters: enough to check the wiring."""

    def predict(
        self, prompts: list[str], models: list[str | None] | None = None
    ) -> list[LengthEstimate]:
        return [LengthEstimate(float(len(p))) for p in prompts]


def test_simulate_with_saved_predictor(
    tmp_path: Path, no_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []
    fake = types.ModuleType("ssjf.predict")

    def load_predictor(path: str) -> _FakePredictor:
        loaded.append(str(path))
        return _FakePredictor()

    fake.load_predictor = load_predictor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ssjf.predict", fake)
    path = tmp_path / "p.jsonl"
    # Prompt length equals the true output length: SSJF with this predictor is the oracle.
    lengths = np.random.default_rng(0).permutation(np.arange(1, 80) * 5).tolist()
    path.write_text(
        "".join(json.dumps({"prompt": "x" * k, "output_tokens": k}) + "\n" for k in lengths)
    )
    invoke(
        "simulate", "-w", f"jsonl:{path}", "--predictor", str(tmp_path / "model"), "-n", "79",
        "--seeds", "1", "-p", "fcfs,ssjf,sjf", "--load", "0.95", "--json", str(tmp_path / "o.json"),
    )  # fmt: skip
    assert loaded == [str(tmp_path / "model")]
    rows = {r["policy"]: r for r in json.loads((tmp_path / "o.json").read_text())["rows"]}
    assert rows["ssjf"]["jct_mean"] == pytest.approx(rows["sjf"]["jct_mean"])
    assert rows["ssjf"]["jct_mean"] < rows["fcfs"]["jct_mean"]


def _tiny_paper_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(2, 512, 400)
    (root / "predictions").mkdir(parents=True)
    for k, edges in ((5, [42, 141, 294, 503]), (3, [141, 503])):
        cls = np.searchsorted(edges, true, side="left")
        noisy = np.clip(cls + rng.integers(-1, 2, len(true)), 0, k - 1)
        body = ",output_token_length,predicted_length,latency,model\n" + "".join(
            f"{i},{t},{c},0.01,vicuna-13b\n"
            for i, (t, c) in enumerate(zip(true, noisy, strict=True))
        )
        (root / "predictions" / f"ssjf_lmsys_vicuna13b_{k}class.csv").write_text(body)


def test_bench_paper_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_paper_data(tmp_path / "data")
    monkeypatch.setenv("SSJF_DATA_DIR", str(tmp_path / "data"))
    out = invoke(
        "bench", "paper", "-n", "150", "--seeds", "2", "--loads", "0.9",
        "--engines", "serial=paper,batch:4=paper", "--json", str(tmp_path / "b.json"),
    )  # fmt: skip
    assert "ssjf-3class" in out
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert len(rows) == 2 * 4
    for r in rows:
        for key in (
            "engine",
            "load",
            "policy",
            "jct_mean",
            "jct_p99",
            "jct_change_vs_fcfs",
            "oracle_gain_fraction",
        ):
            assert key in r
    serial = {r["policy"]: r for r in rows if r["engine"] == "serial"}
    assert serial["sjf"]["jct_change_vs_fcfs"] < 0
    assert serial["sjf"]["oracle_gain_fraction"] == pytest.approx(1.0)


def test_demo_synthetic_fallback(tmp_path: Path, no_data: Path) -> None:
    out = invoke(
        "demo", "-n", "120", "--seeds", "1", "--json", str(tmp_path / "d.json"),
        "--plot", str(tmp_path / "fig"),
    )  # fmt: skip
    assert "SYNTHETIC" in out and "How to read this" in out
    for eng in ("serial", "continuous_8"):
        for name in ("jct_ccdf", "jct_mean_p99", "paired_vs_fcfs"):
            assert (tmp_path / "fig" / f"demo_{eng}_{name}.png").stat().st_size > 1000
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["describe"]["synthetic"] is True
    from ssjf.policies import DEFAULT_POLICY

    assert {r["policy"] for r in data["rows"]} == {"fcfs", DEFAULT_POLICY, "ssjf", "sjf"}
    assert data["describe"]["default_policy"] == DEFAULT_POLICY and DEFAULT_POLICY in out


def test_demo_on_tiny_real_shaped_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    (root / "prompts").mkdir(parents=True)
    (root / "traces").mkdir()
    rng = np.random.default_rng(1)
    with gzip.open(root / "prompts" / "alpaca_eval.jsonl.gz", "wt") as fh:
        for pid in range(40):
            n = int(rng.integers(5, 300))
            rec = {"prompt_id": pid, "generator": "g1", "instruction": "word " * (n // 5 + 1),
                   "prompt_tokens": n // 5 + 1, "output_tokens": n}  # fmt: skip
            fh.write(json.dumps(rec) + "\n")
    stamps = "".join(
        f"2023-11-16 18:{15 + i // 60:02d}:{i % 60:02d}.5000000,100,50\n" for i in range(200)
    )
    (root / "traces" / "azure_llm_2023_conv.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n" + stamps
    )
    monkeypatch.setenv("SSJF_DATA_DIR", str(root))
    out = invoke(
        "demo", "-n", "100", "--seeds", "1", "--generator", "g1", "--engines", "serial=paper"
    )
    assert "AlpacaEval" in out and "Azure" in out and "SYNTHETIC" not in out


def test_simulate_with_real_saved_predictor(tmp_path: Path, no_data: Path) -> None:
    predict = pytest.importorskip("ssjf.predict", reason="ssjf.predict not available")
    pytest.importorskip("sklearn", reason="scikit-learn not installed")
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 400, 120).tolist()
    # Longer prompts, longer answers: input-length learns the relation.
    prompts = [" ".join(["word"] * (k // 4 + 1)) for k in lengths]
    model = predict.make_predictor("input-length")
    model.fit(prompts, [float(k) for k in lengths])
    model.save(tmp_path / "model")
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": p, "output_tokens": k}) + "\n"
            for p, k in zip(prompts, lengths, strict=True)
        )
    )
    invoke(
        "simulate", "-w", f"jsonl:{path}", "--predictor", str(tmp_path / "model"), "-n", "120",
        "--seeds", "1", "-p", "fcfs,ssjf,sjf", "--load", "0.95", "--json", str(tmp_path / "o.json"),
    )  # fmt: skip
    rows = {r["policy"]: r for r in json.loads((tmp_path / "o.json").read_text())["rows"]}
    assert rows["ssjf"]["jct_mean"] < rows["fcfs"]["jct_mean"]
    assert rows["ssjf"]["oracle_gain_fraction"] > 0.5
