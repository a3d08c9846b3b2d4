"""`ssjf bench sim-speed` end to end on a small workload."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ssjf.cli import app


def test_sim_speed_small_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(
        app,
        ["bench", "sim-speed", "--requests", "3000", "--reference-requests", "800",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())
    for key in ("requests", "wall_s", "peak_rss_mb", "max_rel_diff_vs_reference"):
        assert key in row
    assert row["requests"] == 3000
    assert row["max_rel_diff_vs_reference"] <= 1e-9
    assert 0 < row["arrival_rate_rps"] < row["capacity_rps"]
