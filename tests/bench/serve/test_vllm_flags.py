"""``ssjf bench serve`` takes ``vllm bench serve``'s flag names and spellings.

The CLI tests replace the (45-minute) run with a stub that records its settings.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ssjf.bench.serve import vllm_flags
from ssjf.bench.serve.config import ServeBenchConfig
from ssjf.bench.serve.items import poisson_arrivals
from ssjf.bench.serve.replay import arrival_times
from ssjf.bench.serve.run import check_vllm_settings
from ssjf.cli import app

runner = CliRunner()


def test_endpoint_accepts_ours_and_vllms_paths() -> None:
    assert vllm_flags.parse_endpoint("chat") == "chat"
    assert vllm_flags.parse_endpoint("/v1/chat/completions") == "chat"
    assert vllm_flags.parse_endpoint("/v1/completions/") == "completions"
    with pytest.raises(ValueError, match="endpoint must be one of"):
        vllm_flags.parse_endpoint("/v1/embeddings")


def test_comma_lists() -> None:
    assert vllm_flags.parse_percentiles("50, 99.9") == (50.0, 99.9)
    assert vllm_flags.parse_metrics("ttft,e2el") == ("ttft", "e2el")
    for bad in ("101", "x", ""):
        with pytest.raises(ValueError, match="percentiles"):
            vllm_flags.parse_percentiles(bad)
    with pytest.raises(ValueError, match="metrics must be among"):
        vllm_flags.parse_metrics("ttft,latency")


def test_result_path_as_vllm_names_it() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5)
    name = vllm_flags.default_result_name(None, 0.9, "org/Model-7B", now)
    assert name == "ssjf-bench-serve-0.9load-Model-7B-20260102-030405.json"
    assert vllm_flags.default_result_name(2.5, 0.9, "m", now).startswith(
        "ssjf-bench-serve-2.5qps-m-"
    )
    path = vllm_flags.result_path
    assert path(None, False, None, None, name) is None  # nothing asked: nothing written
    assert path(Path("a.json"), True, Path("d"), "b.json", name) == Path("a.json")  # --json wins
    assert path(None, True, None, None, name) == Path(name)
    assert path(None, True, Path("d"), None, name) == Path("d") / name
    assert path(None, False, None, "b.json", name) == Path("b.json")
    assert path(None, False, Path("d"), "b.json", name) == Path("d/b.json")


def test_infinite_rate_sends_everything_at_once() -> None:
    assert arrival_times(4, math.inf, seed=1) == [0.0] * 4
    assert arrival_times(50, 3.0, seed=1) == poisson_arrivals(50, 3.0, seed=1)


def test_bad_settings_are_refused_before_any_work() -> None:
    check_vllm_settings(ServeBenchConfig(request_rate=math.inf))
    for cfg, msg in (
        (ServeBenchConfig(request_rate=0.0), "request rate"),
        (ServeBenchConfig(percentile_metrics=("ttft", "x")), "unknown percentile metrics"),
        (ServeBenchConfig(metric_percentiles=(150.0,)), "within 0..100"),
    ):
        with pytest.raises(ValueError, match=msg):
            check_vllm_settings(cfg)


def _row(name: str) -> dict[str, Any]:
    figures = [
        "jct_mean",
        "jct_mean_vs_fcfs",
        "jct_mean_vs_fcfs_std",
        "engine_jct_mean",
        "engine_jct_mean_vs_fcfs",
        "jct_p99",
        "ttft_mean",
        "throughput_rps",
        "kept_up_min",
        "added_latency_p50_ms",
    ]
    return {"config": name, "errors": 0, **dict.fromkeys(figures, 1.0)}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[ServeBenchConfig]:
    """Stand in for the run: record the settings, return a one-row result."""
    configs: list[ServeBenchConfig] = []

    def fake_run(cfg: ServeBenchConfig, log: Any = None) -> dict[str, Any]:
        configs.append(cfg)
        meta = {"capacity_rps": 2.0, "settings": {"model": cfg.model or cfg.generator}}
        return {"meta": meta, "configs": [_row("fcfs-direct")]}

    monkeypatch.setattr("ssjf.bench.serve.run.run_serve_bench", fake_run)
    return configs


def test_cli_takes_vllm_flag_names(seen: list[ServeBenchConfig], tmp_path: Path) -> None:
    args = [
        "bench", "serve", "--predictor", "none",
        "--num-prompts", "7", "--request-rate", "inf", "--seed", "3",
        "--served-model-name", "org/m", "--endpoint", "/v1/completions",
        "--metric-percentiles", "50,99", "--percentile-metrics", "ttft,itl",
        "--save-result", "--result-dir", str(tmp_path),
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (cfg,) = seen
    assert (cfg.requests, cfg.request_rate, cfg.seed) == (7, math.inf, 3)
    assert (cfg.model, cfg.endpoint) == ("org/m", "completions")
    assert cfg.metric_percentiles == (50.0, 99.0) and cfg.percentile_metrics == ("ttft", "itl")
    (written,) = tmp_path.iterdir()
    assert written.name.startswith("ssjf-bench-serve-infqps-m-") and written.suffix == ".json"
    assert json.loads(written.read_text())["configs"][0]["config"] == "fcfs-direct"


def test_cli_result_filename(seen: list[ServeBenchConfig], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["bench", "serve", "--predictor", "none", "--result-filename", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert seen[0].request_rate is None and seen[0].load == 0.9
    assert json.loads(out.read_text())["meta"]["capacity_rps"] == 2.0


@pytest.mark.parametrize(
    ("flag", "value", "msg"),
    [
        ("--endpoint", "/v1/embeddings", "endpoint must be one of"),
        ("--metric-percentiles", "99,101", "percentiles must be within"),
        ("--percentile-metrics", "ttft,goodput", "metrics must be among"),
    ],
)
def test_cli_refuses_bad_spellings_in_one_line(
    seen: list[ServeBenchConfig], flag: str, value: str, msg: str
) -> None:
    res = runner.invoke(app, ["bench", "serve", "--predictor", "none", flag, value])
    assert res.exit_code == 2 and not seen
    assert msg in res.output and "Traceback" not in res.output
