"""A command whose extra is missing: one line on stderr, status 2, before any data is read.

The full matrix runs against a core-only install in `.ci/check_wheel.sh`
(tests/packaging/core_only_cli.py); here the extra is hidden in-process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ssjf.cli import main


def _run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["ssjf", *args])
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return code if isinstance(code, int) else 1


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for m in modules:  # None in sys.modules: find_spec() and import both see it missing
        monkeypatch.setitem(sys.modules, m, None)


def test_plot_error_keeps_the_extra_in_brackets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _hide(monkeypatch, "matplotlib")
    code = _run_main(monkeypatch, "simulate", "-w", "synthetic", "--plot", str(tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: ssjf simulate --plot needs the 'plot' extra (matplotlib not installed): "
        "pip install 'ssjf[plot]'\n"
    )
    assert not list(tmp_path.iterdir())  # nothing ran


def test_train_checks_the_family_before_loading_data(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _hide(monkeypatch, "sentence_transformers")
    # The data file does not exist: a data error would mean the check came too late.
    code = _run_main(
        monkeypatch,
        "train",
        "--data",
        str(tmp_path / "missing.jsonl"),
        "--family",
        "embed-ridge",
        "--out",
        str(tmp_path / "out"),
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1
    assert "'encoders' extra (sentence_transformers not installed)" in err[0]
    assert not (tmp_path / "out").exists()


def test_saved_predictor_family_picks_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "config.json").write_text(json.dumps({"family": "finetune-bucket"}))
    _hide(monkeypatch, "datasets")
    code = _run_main(monkeypatch, "predict", str(pred), "--input", "x.jsonl", "--output", "y.jsonl")
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ssjf predict (family finetune-bucket) needs the 'finetune'")


def test_serve_without_the_gateway_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "uvicorn")
    code = _run_main(monkeypatch, "serve", "--upstream", "http://127.0.0.1:9")
    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith("pip install 'ssjf[gateway]'\n") and err.count("\n") == 1


def test_parquet_records_need_the_parquet_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _hide(monkeypatch, "pyarrow")
    args = ["simulate", "-w", "synthetic", "-n", "50", "--seeds", "1"]
    code = _run_main(monkeypatch, *args, "--records", str(tmp_path / "r.parquet"))
    assert code == 2
    assert "pip install 'ssjf[parquet]'" in capsys.readouterr().err
