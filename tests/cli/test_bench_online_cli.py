"""`ssjf bench predictor --online`: flags reach the replay's config; misuse is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.sim.online_factories import records, shipped
from typer.testing import CliRunner

import ssjf.bench.online_replay as online_replay
from ssjf.bench.online_stream import OnlineData
from ssjf.cli import app

runner = CliRunner()
TRAIN = records(60, ["a", "b"], seed=1, tag="t")
DATA = OnlineData(TRAIN, records(900, ["x", "y"], 2, "u"), records(250, ["a"], 3, "s"))


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[online_replay.OnlineConfig]:
    """Run the real replay on tiny synthetic data instead of the shared collections."""
    seen: list[online_replay.OnlineConfig] = []
    real = online_replay.run_online

    def fake(cfg: online_replay.OnlineConfig, **kw: Any) -> dict[str, Any]:
        seen.append(cfg)
        out = real(cfg, data=DATA, predictor=shipped(TRAIN), progress=kw.get("progress"))
        out["stream"].update(train_sets=["t"], unseen_set="u", unseen_generators=["x", "y"],
                             seen_set="s", train_records=len(TRAIN))  # fmt: skip
        return out

    monkeypatch.setattr(online_replay, "run_online", fake)
    return seen


def test_online_flags_reach_the_config(captured: list, tmp_path: Path) -> None:
    out = tmp_path / "online.json"
    args = "bench predictor --online --online-requests 120 --online-seeds 2 --online-window 40"
    args += " --retrain min_records=30:every=50:holdout=10 --json " + str(out)
    res = runner.invoke(app, args.split(), env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    (cfg,) = captured
    assert (cfg.requests, cfg.seeds, cfg.window, cfg.family) == (120, (0, 1), 40, "tfidf")
    assert (cfg.retrain_settings.every, cfg.retrain_settings.min_records) == (50, 30)
    doc = json.loads(out.read_text())
    assert doc["config"]["retrain_settings"]["holdout"] == 10
    assert [w["start"] for w in doc["result"]["windows"]] == [0, 40, 80]
    # Marks past the run are dropped: 120 requests have no 200th or 1,000th completion.
    assert set(doc["result"]["spans"]) == {"whole_run"} and cfg.marks == ()
    assert "after N completions" in res.output


def test_online_defaults(captured: list) -> None:
    res = runner.invoke(app, ["bench", "predictor", "--online", "--online-requests", "1001"])
    assert res.exit_code == 0, res.output
    (cfg,) = captured
    assert (cfg.seeds, cfg.window, cfg.marks) == ((0, 1, 2), 200, (200, 1000))
    assert (cfg.retrain_settings.every, cfg.retrain_settings.min_records) == (500, 200)
    assert "retrained_beats_calibrated_after_1000" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--online-seeds", "2"], "--online-seeds applies to --online only"),
        (["--retrain", "every=10"], "--retrain applies to --online only"),
        (["--online", "--retrain", "every=zero"], "is no number"),
        (["--online", "--families", "tfidf,constant"], "--online replays one family"),
        (["--online", "--online-window", "0"], "--online-window"),
    ],
)
def test_misuse_is_refused(captured: list, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["bench", "predictor", *args], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
