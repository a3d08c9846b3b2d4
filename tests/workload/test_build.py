"""Workload assembly: sampling, load -> rate, estimates, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from ssjf.estimate import LengthEstimate
from ssjf.sim import parse_cost_model, parse_engine
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.build import (
    WorkloadSpec,
    build_workload,
    sample_indices,
    synthetic_pool,
)
from ssjf.workload.sources import Pool


def tiny_pool(n: int = 50, with_times: bool = False) -> Pool:
    out = np.arange(1, n + 1, dtype=np.int64) * 10
    return Pool(
        name="tiny",
        prompt_tokens=np.full(n, 5, dtype=np.int64),
        output_tokens=out,
        timestamps=np.arange(n, dtype=float) * 2.0 if with_times else None,
        estimates=[LengthEstimate(point=float(v)) for v in out],
    )


@pytest.mark.parametrize(
    ("text", "kind", "arg"),
    [
        ("azure-conv", "azure-conv", None),
        ("alpaca", "alpaca", "gpt4_1106_preview"),
        ("alpaca:claude-2.1", "alpaca", "claude-2.1"),
        ("paper:5class", "paper", "5"),
        ("paper:3", "paper", "3"),
        ("csv:/tmp/x.csv", "table", "/tmp/x.csv"),
        ("synthetic", "synthetic", None),
    ],
)
def test_workload_spec_parse(text: str, kind: str, arg: str | None) -> None:
    spec = WorkloadSpec.parse(text)
    assert (spec.kind, spec.arg) == (kind, arg)


def test_workload_spec_columns() -> None:
    spec = WorkloadSpec.parse("jsonl:data/r.jsonl:output_tokens=gen,arrival=ts")
    assert spec.arg == "data/r.jsonl"
    assert spec.columns == {"output_tokens": "gen", "arrival": "ts"}


@pytest.mark.parametrize("bad", ["paper:7class", "azure", "jsonl", "nope:1"])
def test_workload_spec_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        WorkloadSpec.parse(bad)


def test_sample_indices() -> None:
    rng = np.random.default_rng(0)
    idx = sample_indices(10, 4, rng, contiguous=True)
    assert np.array_equal(np.diff(idx), np.ones(3))
    idx = sample_indices(10, 10, rng, contiguous=False)
    assert sorted(idx.tolist()) == list(range(10))
    assert len(sample_indices(3, 8, rng, contiguous=False, replace=True)) == 8
    with pytest.raises(ValueError, match="fewer than the 8 requested"):
        sample_indices(3, 8, rng, contiguous=False)


def test_serial_rate_is_load_times_inverse_mean_service() -> None:
    pool = tiny_pool()
    engine, cost = parse_engine("serial"), parse_cost_model("paper")
    wl = build_workload(pool, 50, seed=0, engine=engine, cost=cost, load=0.5)
    # Paper cost: 0.1 s + 0.02 s/token; all 50 records used.
    mean_service = 0.1 + 0.02 * pool.output_tokens.mean()
    assert wl.capacity_rps == pytest.approx(1 / mean_service, rel=1e-6)
    assert wl.rate_rps == pytest.approx(0.5 / mean_service, rel=1e-6)
    assert len(wl.jobs) == 50
    assert wl.jobs[0].request.arrival == 0.0


def test_same_seed_same_jobs_and_estimates() -> None:
    pool = synthetic_pool(500)
    engine, cost = parse_engine("serial"), parse_cost_model("paper")
    a = build_workload(pool, 100, 3, engine=engine, cost=cost, load=0.9, estimates="noisy:0.5")
    b = build_workload(pool, 100, 3, engine=engine, cost=cost, load=0.9, estimates="noisy:0.5")
    c = build_workload(pool, 100, 4, engine=engine, cost=cost, load=0.9, estimates="noisy:0.5")
    key = lambda w: [(j.request.arrival, j.output_tokens, j.request.estimate) for j in w.jobs]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)


def test_trace_arrivals_keep_records_with_their_times() -> None:
    pool = tiny_pool(with_times=True)
    wl = build_workload(pool, 10, 1, rate=1.0, arrival=ArrivalSpec("trace"))
    # A contiguous window: records i..i+9, times rescaled to 1 req/s.
    out = [j.output_tokens for j in wl.jobs]
    assert np.all(np.diff(out) == 10)
    times = [j.request.arrival for j in wl.jobs]
    assert times[0] == 0.0 and times[-1] == pytest.approx(9.0)


def test_estimates_options() -> None:
    pool = tiny_pool()
    wl = build_workload(pool, 5, 0, rate=1.0, estimates="none")
    assert all(j.request.estimate is None for j in wl.jobs)
    wl = build_workload(pool, 5, 0, rate=1.0)
    assert all(
        j.request.estimate is not None and j.request.estimate.point == j.output_tokens
        for j in wl.jobs
    )
    wl = build_workload(pool, 5, 0, rate=1.0, estimates=lambda p: [LengthEstimate(1.0)] * len(p))
    assert wl.describe["estimates"] == "predictor"
    with pytest.raises(ValueError, match="rate"):
        build_workload(pool, 5, 0, load=0.5)
