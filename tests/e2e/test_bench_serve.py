"""`ssjf bench serve` end to end on the test engine, with a handful of requests."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from ssjf.bench.serve.config import CONFIGS as CONFIG_NAMES
from ssjf.bench.serve.config import ServeBenchConfig
from ssjf.bench.serve.run import run_serve_bench
from ssjf.workload.data import data_dir

from .conftest import ENGINE_SLOTS, Engine

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

KEYS = {"config", "jct_mean", "jct_p99", "ttft_mean", "throughput_rps", "added_latency_p50_ms"}


def _small_config(**settings: Any) -> ServeBenchConfig:
    """A handful of short requests at half load; ``settings`` add to or override it."""
    base: dict[str, Any] = {
        "requests": 6,
        "load": 0.5,
        "max_tokens_cap": 32,
        "max_num_seqs": ENGINE_SLOTS,
        "predictor": "tfidf",
        "capacity_requests": 6,
        "latency_requests": 5,
        # The test engine runs one slot and long contexts; keep the gateway's
        # predictor patient on a loaded machine.
        "gateway": {"predictor_timeout_ms": 10_000},
    }
    return ServeBenchConfig(**{**base, **settings})


def test_bench_serve_small_run_reports_every_config(engine: Engine) -> None:
    if data_dir() is None:
        pytest.skip("SSJF_DATA_DIR not set: the bench replays AlpacaEval prompts")
    cfg = _small_config(
        seeds=2,
        fcfs_gateway=True,
        train_all_generators=False,  # quick; the side-by-side test trains on all
        engine_url=engine.url,
        model="tiny",
    )
    out = run_serve_bench(cfg, log=lambda m: None)
    names = [r["config"] for r in out["configs"]]
    assert names == [
        "fcfs-direct",
        "ssjf-vllm-priority",
        "ssjf-gateway-queue",
        "fcfs-gateway",
        "sjf-oracle-direct",
    ]
    for row in out["configs"]:
        assert row.keys() >= KEYS
        assert row["ok"] == 12 and row["errors"] == 0  # 6 requests x 2 seeds
        assert row["exact_tokens"] == 1.0  # max_tokens + ignore_eos: exact lengths
        assert row["jct_p99"] >= row["jct_mean"] * 0.5 > 0
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        assert len(row["jct_mean_vs_fcfs_per_seed"]) == 2
        # The test engine reports per-request timings: the engine-timed latency
        # exists and never exceeds what the client measured (plus clock jitter).
        assert 0 < row["engine_jct_mean"] <= row["jct_mean"] + 0.05
    # Every gateway counted where each replayed request's estimate came from.
    assert set(out["meta"]["estimate_sources"]) == {
        "ssjf-vllm-priority",
        "ssjf-gateway-queue",
        "fcfs-gateway",
    }
    assert all(sum(v.values()) == 12 for v in out["meta"]["estimate_sources"].values())
    assert out["configs"][0]["added_latency_p50_ms"] == 0.0
    assert set(out["meta"]["added_latency"]) == {
        "ssjf-vllm-priority",
        "ssjf-gateway-queue",
        "fcfs-gateway",
    }
    assert out["meta"]["capacity_rps"] > 0
    # Capacity is measured again before each seed (this host's speed drifts).
    assert [c["seed"] for c in out["meta"]["capacity"]] == [0, 1]
    assert all(c["tokens_per_s"] > 0 for c in out["meta"]["capacity"])
    for row in out["configs"]:
        # At load 0.5 a replay can at most run at capacity: twice what is offered.
        assert all(0 < r["kept_up"] < 3 for r in row["runs"])
        # The engine's busy speed comes from its own timings; the offered load over it
        # is positive and, at a requested 0.5, well below overload.
        assert all(r["engine_busy_tokens_per_s"] > 0 for r in row["runs"])
        assert all(0 < r["effective_load"] < 1.5 for r in row["runs"])
        # Its speed with every slot busy (NaN when a light replay never filled them).
        full = [r["engine_full_tokens_per_s"] for r in row["runs"]]
        assert all(f > 0 or math.isnan(f) for f in full)
    assert -1.0 <= out["meta"]["predictor_kendall_tau"] <= 1.0


def test_bench_serve_side_by_side_starts_an_engine_per_config(engine: Engine) -> None:
    """The default layout: one engine per config, compute on one shared CPU, the
    configs' replays at the same time; every engine serves its config in full."""
    if data_dir() is None:
        pytest.skip("SSJF_DATA_DIR not set: the bench replays AlpacaEval prompts")
    if engine.server is None:
        pytest.skip("SSJF_TEST_ENGINE_URL given: this test starts engines of its own")
    cfg = _small_config(seeds=1, oracle=False)
    cpus = os.sched_getaffinity(0)
    out = run_serve_bench(cfg, log=lambda m: None)
    # The bench moved this process off the engines' CPU while it ran, not for good.
    assert os.sched_getaffinity(0) == cpus
    meta = out["meta"]
    assert meta["side_by_side"] is True and meta["engines"] == 3
    # Capacity: every engine measured over the same window, one figure each.
    (cap,) = meta["capacity"]
    assert len(cap["per_engine_tokens_per_s"]) == 3
    assert all(t > 0 for t in cap["per_engine_tokens_per_s"])
    assert cap["tokens_per_s"] == pytest.approx(sum(cap["per_engine_tokens_per_s"]) / 3)
    if meta["engine_cpus"] is not None:  # 2+ CPUs: the engines' compute shares the last one
        assert meta["engine_cpus"] == [max(cpus)]
    assert [r["config"] for r in out["configs"]] == list(CONFIG_NAMES)
    for row in out["configs"]:
        assert row["ok"] == 6 and row["errors"] == 0 and row["exact_tokens"] == 1.0
    # The started engines serve the tiny model as the generator it replays, and the
    # predictor, trained on that generator among others, is asked about it.
    assert meta["settings"]["model"] == cfg.generator
    assert sum(meta["estimate_sources"]["ssjf-vllm-priority"].values()) == 6
