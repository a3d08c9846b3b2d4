"""A new user's own log through `train`, `evaluate`, `predict` and `simulate`.

The log has what real logs have: ISO 8601 timestamps, a row censored at
max_tokens (the gateway's ``truncated``), U+FFFD and a raw invalid byte, rows
grouped by model, and fewer rows than the default ``-n``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssjf.cli import app

pytest.importorskip("sklearn", reason="the tfidf family needs the predict extra")

runner = CliRunner()
TOPICS = ("a haiku about cats", "a long essay on the history of rome", "one word: yes or no")
LENGTHS = (30, 600, 2)


def _log(path: Path) -> Path:
    """80 rows, model 'llama' then model 'mistral' (grouped), ISO times 0.5 s apart."""
    rng = np.random.default_rng(0)
    t0 = datetime(2025, 12, 6, 6, 8, 32, 38_000, tzinfo=UTC)
    lines: list[bytes] = []
    for i in range(80):
        k = int(rng.integers(0, 3))
        rec = {
            "prompt": f"write {TOPICS[k]} (#{i})",
            "output_tokens": int(LENGTHS[k] * rng.uniform(0.8, 1.2)) + 1,
            "model": "llama" if i < 40 else "mistral",
            "arrival": (t0 + timedelta(seconds=0.5 * i)).isoformat().replace("+00:00", "Z"),
            "prompt_tokens": 12,
            "max_tokens": 1024,
            "truncated": False,
        }
        if i == 5:
            rec.update(output_tokens=1024, truncated=True)  # censored: stopped by max_tokens
        if i == 7:
            rec["prompt"] = "caf\ufffd " + str(rec["prompt"])
        line = json.dumps(rec, ensure_ascii=False).encode("utf-8")
        if i == 9:
            line = line.replace(b"write", b"wr\xffite")  # a byte no UTF-8 decoder accepts
        lines.append(line + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def _run(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_user_log_through_every_command(tmp_path: Path) -> None:
    log = _log(tmp_path / "log.jsonl")
    pred = tmp_path / "pred"

    out = _run("train", "--data", str(log), "--family", "tfidf", "--out", str(pred))
    assert "dropped 1 censored record(s)" in out
    assert "UTF-8" not in out and "bad record" not in out
    training = json.loads((pred / "config.json").read_text())["training"]
    assert training["records"] == 79 and training["censored_dropped"] == 1

    out = _run(
        "evaluate",
        str(pred),
        "--data",
        str(log),
        "--no-latency",
        "--json",
        str(tmp_path / "e.json"),
    )
    assert "dropped 1 censored record(s)" in out and "UTF-8" not in out
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 79

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(b'{"prompt": "caf\xef\xbf\xbd"}\n{"prompt": "wr\xffite"}\n')
    out = _run("predict", str(pred), "--input", str(prompts), "--output", str(tmp_path / "p.jsonl"))
    assert "wrote 2 predictions" in out

    common = ("simulate", "-w", f"jsonl:{log}", "-p", "fcfs,sjf", "--seeds", "1")
    # The ISO arrivals replay as a trace: time order, so no grouping warning.
    out = _run(*common, "-n", "500")
    assert "fewer than -n 500: using each once" in out
    assert "grouped by model" not in out
    # Generated arrivals replay file order: the grouping is worth a warning ...
    out = _run(*common, "-n", "80", "--arrivals", "poisson")
    assert "grouped by model" in out and "--shuffle" in out
    # ... which --shuffle settles.
    out = _run(*common, "-n", "80", "--arrivals", "poisson", "--shuffle")
    assert "grouped by model" not in out
    # A KV cache too small for the longest rows: they are skipped, the fix spelled.
    out = _run(*common, "-n", "80", "-e", "continuous:4:blocks=20")
    assert "too large for continuous:4" in out and ":blocks=" in out
    assert "num_kv_blocks" not in out
