"""`ssjf simulate --load L1,L2`: a load sweep; one load keeps the single-run output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssjf.cli import app

runner = CliRunner()

TINY = ("simulate", "-w", "synthetic", "-n", "50", "--seeds", "1", "-p", "fcfs,ssjf,sjf")


@pytest.fixture(autouse=True)
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))


def simulate(*args: str) -> str:
    result = runner.invoke(app, [*TINY, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_sweep_table_and_json_carry_every_load(tmp_path: Path) -> None:
    out = simulate("--load", "0.5,0.9", "--json", str(tmp_path / "s.json"))
    assert "loads 0.5, 0.9" in out
    header = next(ln for ln in out.splitlines() if "policy" in ln)
    assert header.split()[1] == "load"  # the first column
    table_rows = [ln for ln in out.splitlines() if ln.startswith("│")]
    assert [ln.split("│")[1].strip() for ln in table_rows] == ["0.5"] * 3 + ["0.9"] * 3
    data = json.loads((tmp_path / "s.json").read_text())
    assert set(data) == {"command", "workload", "settings", "sweep"}
    assert data["settings"]["load"] == [0.5, 0.9] and data["settings"]["rate"] is None
    assert [b["load"] for b in data["sweep"]] == [0.5, 0.9]
    for block in data["sweep"]:
        assert [r["policy"] for r in block["rows"]] == ["fcfs", "ssjf", "sjf"]
        assert {r["load"] for r in block["rows"]} == {block["load"]}
        assert len(block["per_seed"]) == 3
    fcfs = [b["rows"][0]["jct_mean"] for b in data["sweep"]]
    assert fcfs[0] < fcfs[1]  # more load, more queueing


def test_one_load_keeps_the_single_run_shape_and_matches_the_sweep(tmp_path: Path) -> None:
    out = simulate("--load", "0.9", "--json", str(tmp_path / "one.json"))
    assert "load 0.9 ·" in out and "loads" not in out
    header = next(ln for ln in out.splitlines() if "policy" in ln)
    assert header.split()[1] == "policy" and " load " not in header
    one = json.loads((tmp_path / "one.json").read_text())
    assert set(one) == {"command", "workload", "settings", "workloads", "rows", "per_seed"}
    assert one["settings"]["load"] == 0.9 and one["settings"]["rate"] is None
    # Same workload and seeds at every point: the sweep's 0.9 block is this run.
    simulate("--load", "0.5,0.9", "--json", str(tmp_path / "sweep.json"))
    block = json.loads((tmp_path / "sweep.json").read_text())["sweep"][1]
    for mine, theirs in zip(one["rows"], block["rows"], strict=True):
        assert mine["jct_mean"] == theirs["jct_mean"] and mine["jct_p99"] == theirs["jct_p99"]


def test_rate_sweep(tmp_path: Path) -> None:
    out = simulate("--rate", "0.05,0.1", "--json", str(tmp_path / "r.json"))
    assert "rates 0.05, 0.1 req/s" in out and "rate req/s" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert [(b["load"], b["rate"]) for b in data["sweep"]] == [(None, 0.05), (None, 0.1)]
    assert data["settings"]["rate"] == [0.05, 0.1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--load", "0.5,x"), "--load: expected numbers"),
        (("--load", "0.5,0"), "--load: 0 is not a positive number"),
        (("--rate", ","), "--rate: give at least one number"),
    ],
)
def test_bad_sweeps_are_refused(args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, [*TINY, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and message in result.output


def test_sweep_plot_draws_the_load_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = simulate("--load", "0.5,0.9", "--plot", str(tmp_path / "fig"))
    curves = tmp_path / "fig" / "jct_vs_load.png"
    assert str(curves) in out.replace("\n", "")
    assert curves.stat().st_size > 5000
    assert (tmp_path / "fig" / "load0.9_jct_ccdf.png").exists()


def test_goodput_columns_only_with_an_slo() -> None:
    assert "goodput" not in simulate()
    out = simulate("--slo-jct", "20")
    assert "SLO met" in out and "goodput" in out and "JCT ≤ 20 s" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("│ fcfs"))
    assert row.rstrip("│ ").split("│")[-2].strip().endswith("%")  # SLO met, a share


def test_json_to_stdout_leaves_stdout_pure_json() -> None:
    result = runner.invoke(app, [*TINY, "--json", "-"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["policy"] for r in data["rows"]] == ["fcfs", "ssjf", "sjf"]
    assert "JCT mean" in result.stderr  # the table went to standard error
