"""`ssjf train` / `evaluate` / `predict` / `families` on small local files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ssjf.cli import app
from ssjf.predict import load_predictor

from .factories import synthetic

runner = CliRunner()


def _write(path: Path, prompts: list[str], lengths: list[float], models: list[str] | None) -> Path:
    with path.open("w") as fh:
        for i, (p, n) in enumerate(zip(prompts, lengths, strict=True)):
            rec = {"prompt": p, "output_tokens": int(n), "prompt_id": str(i // 2)}
            if models is not None:
                rec["model"] = models[i]
            fh.write(json.dumps(rec) + "\n")
    return path


def test_train_evaluate_predict(tmp_path: Path) -> None:
    prompts, lengths, models = synthetic(n_prompts=80)
    train_file = _write(tmp_path / "train.jsonl", prompts, lengths, models)
    out = tmp_path / "pred"
    res = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(train_file),
            "--family",
            "tfidf",
            "--out",
            str(out),
            "--eval-frac",
            "0.25",
            "--param",
            "alpha=2",
            "--json",
            str(tmp_path / "t.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    pred = load_predictor(out)
    assert pred.params["alpha"] == 2
    assert pred.training["records"] == 120  # 75% of 80 prompts x 2 models
    # 20 held-out prompts of two kinds (essay vs. one-word): within a kind the order is noise
    assert pred.metrics["held_out"]["tau_mean"] > 0.3
    assert json.loads((tmp_path / "t.json").read_text())["metrics"]["held_out"]["n"] == 40

    # evaluate on a file whose model was never seen: unconditioned fallback, still ranks
    tp, tl, _ = synthetic(n_prompts=30, models=("brand-new",), seed=5)
    eval_file = _write(tmp_path / "eval.jsonl", tp, tl, ["brand-new"] * len(tp))
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(out),
            "--data",
            str(eval_file),
            "--json",
            str(tmp_path / "e.json"),
            "--no-latency",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["n"] == 30
    assert report["per_model"]["brand-new"]["tau"] > 0.5
    assert "brand-new" in res.output

    inp = tmp_path / "in.jsonl"
    inp.write_text(
        json.dumps({"id": 1, "prompt": "please essay about rain"})
        + "\n"
        + json.dumps(
            {
                "id": 2,
                "messages": [{"role": "user", "content": "please name a city"}],
                "model": "m-long",
            }
        )
        + "\n"
        + "not json\n"
        + json.dumps({"id": 3})
        + "\n"
    )
    res = runner.invoke(
        app, ["predict", str(out), "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["predicted_tokens"] > rows[1]["predicted_tokens"] / 2  # essay vs. name
    assert set(rows[0]["predicted_quantiles"]) == {"0.1", "0.25", "0.5", "0.75", "0.9"}
    assert "in.jsonl:3" in res.output and "in.jsonl:4" in res.output
    res = runner.invoke(
        app,
        [
            "predict",
            str(out),
            "--input",
            str(inp),
            "--output",
            str(tmp_path / "o2.jsonl"),
            "--strict",
        ],
    )
    assert res.exit_code == 2


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["train", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2
    assert "nope.jsonl: no such file" in res.output
    f = _write(tmp_path / "d.jsonl", ["a", "b"], [1, 2], None)
    res = runner.invoke(
        app, ["train", "--data", str(f), "--family", "bogus", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "unknown predictor family" in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path), "--data", str(f)])
    assert res.exit_code == 2 and "not a saved predictor" in res.output
    res = runner.invoke(app, ["families"])
    assert res.exit_code == 0 and "tfidf" in res.output
