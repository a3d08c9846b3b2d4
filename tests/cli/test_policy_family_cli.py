"""Every registered policy runs from the CLI (`ssjf simulate --policies ...`), settings included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssjf.cli import app
from ssjf.policies import available_policies

runner = CliRunner()


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No data dir and an empty cache: the synthetic workload only."""
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_every_policy_and_the_service_key_from_the_cli(tmp_path: Path, no_data: Path) -> None:
    specs = [*sorted(available_policies()), "ssjf:size=service", "mlfq:promote-after-s=off"]
    out = tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["simulate", "-w", "synthetic", "-n", "60", "--seeds", "1", "--cost", "affine",
         "-p", ",".join(specs), "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["policy"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == set(specs)
    for spec, row in rows.items():
        assert row["jct_mean"] > 0, spec
    # No preemption on the serial engine: las and mlfq keep arrival order within a level.
    assert rows["las"]["jct_mean"] == rows["fcfs"]["jct_mean"]


@pytest.mark.parametrize(
    ("spec", "setting"),
    [("ssjf:size=bytes", "size"), ("mlfq:levels=0", "levels"), ("las:boost=-1", "boost"),
     ("risk:q=2", "q"), ("ltr:size=service", "size")],
)  # fmt: skip
def test_bad_settings_fail_before_any_run(spec: str, setting: str, no_data: Path) -> None:
    result = runner.invoke(app, ["simulate", "-w", "synthetic", "-n", "20", "-p", f"fcfs,{spec}"])
    assert result.exit_code != 0
    assert setting in result.output
