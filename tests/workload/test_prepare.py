"""Readying a pool to replay: oversized requests skipped alike, -n fitted, order checked."""

from __future__ import annotations

import numpy as np
import pytest

from ssjf.bench.runner import RunSettings, parse_policies, run_experiment
from ssjf.job import Job
from ssjf.request import Request
from ssjf.sim import parse_cost_model, parse_engine, simulate
from ssjf.workload.arrivals import ArrivalSpec
from ssjf.workload.build import build_workload
from ssjf.workload.pool import Pool
from ssjf.workload.prepare import drop_unfit, prepare_pool


def _pool(
    lengths: list[int], prompts: list[int] | None = None, models: list[str] | None = None
) -> Pool:
    n = len(lengths)
    return Pool(
        name="log.jsonl",
        prompt_tokens=np.asarray(prompts or [10] * n, dtype=np.int64),
        output_tokens=np.asarray(lengths, dtype=np.int64),
        models=models,
    )


def test_unfit_requests_are_skipped_with_the_cli_fix() -> None:
    # 4 blocks of 16 tokens hold 64: 10 + 60 - 1 = 69 tokens need 5 blocks.
    pool = _pool([5, 60, 20, 200, 30])
    engine = parse_engine("continuous:2:blocks=4")
    kept, line = drop_unfit(pool, engine)
    assert kept.output_tokens.tolist() == [5, 20, 30]
    assert line is not None and "skipped 2 of 5" in line
    # 10 + 200 - 1 = 209 tokens: 14 blocks, spelled as an engine spec.
    assert "--engine continuous:2:tokens=2048:block=16:blocks=14" in line
    assert "num_kv_blocks" not in line and "\n" not in line
    assert drop_unfit(pool, parse_engine("serial")) == (pool, None)


def test_nothing_fits_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ValueError, match=r"no request .* --engine continuous:2:.*blocks=14"):
        drop_unfit(_pool([200, 150]), parse_engine("continuous:2:blocks=4"))


def test_simulate_refuses_with_the_cli_spelling() -> None:
    jobs = [Job(request=Request(id=0, arrival=0.0, prompt_tokens=10), output_tokens=200)]
    with pytest.raises(ValueError) as exc:
        simulate(
            jobs, parse_engine("continuous:2:blocks=4"), "fcfs", cost=parse_cost_model("paper")
        )
    msg = str(exc.value)
    assert "need 14 KV blocks" in msg and "--engine continuous:2:" in msg and ":blocks=14" in msg
    assert "num_kv_blocks" not in msg


def test_every_policy_sees_the_same_skipped_set() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 120, 60).tolist()
    lengths[7] = lengths[33] = 5000  # never fit 20 blocks
    engine = "continuous:4:blocks=20"
    prep = prepare_pool(_pool(lengths), 50, engine=parse_engine(engine))
    assert len(prep.pool) == 58 and prep.requests == 50
    settings = RunSettings(engine=engine, cost="paper", requests=50, seeds=(0, 1), records=True)
    res = run_experiment(prep.pool, parse_policies("fcfs,sjf,srpt"), settings)
    by_run: dict[tuple[object, object], list[int]] = {}
    for rec in res.records:
        key = (rec["seed"][0], rec["policy"][0])
        by_run[key] = sorted(rec["output_tokens"])
    for seed in (0, 1):
        runs = [v for (s, _), v in by_run.items() if s == seed]
        assert len(runs) == 3 and all(r == runs[0] for r in runs)
        assert 5000 not in runs[0]


def test_more_requests_than_rows_uses_each_row_once() -> None:
    prep = prepare_pool(_pool(list(range(1, 31))), 100)
    assert prep.requests == 30
    (line,) = prep.warnings
    assert "30 usable records, fewer than -n 100" in line and "--resample" in line
    # Asked for: 100 draws with replacement.
    again = prepare_pool(_pool(list(range(1, 31))), 100, resample=True)
    assert again.requests == 100 and not again.warnings
    wl = build_workload(again.pool, 100, 0, rate=1.0, replace=True)
    assert len(wl.jobs) == 100  # 100 draws from 30 rows: only possible with replacement


def test_sampling_is_without_replacement_unless_asked() -> None:
    pool = _pool(list(range(1, 41)))
    wl = build_workload(pool, 40, 0, rate=1.0)
    assert sorted(wl.pool.output_tokens.tolist()) == list(range(1, 41))
    with pytest.raises(ValueError, match="fewer than the 41 requested"):
        build_workload(pool, 41, 0, rate=1.0)


def test_trace_arrivals_clamp_without_resampling_and_refuse_shuffle() -> None:
    pool = _pool([5] * 10)
    prep = prepare_pool(pool, 50, file_order=False, resample=True)
    assert prep.requests == 10 and "--resample" not in prep.warnings[0]
    with pytest.raises(ValueError, match="--shuffle"):
        prepare_pool(pool, 5, file_order=False, shuffle=True)


def test_grouped_rows_warn_and_shuffle_fixes_them() -> None:
    models = ["llama"] * 40 + ["mistral"] * 40
    lengths = np.random.default_rng(3).integers(1, 300, 80).tolist()
    prep = prepare_pool(_pool(lengths, models=models), 80)
    (line,) = prep.warnings
    assert "grouped by model" in line and "--shuffle" in line
    mixed = prepare_pool(_pool(lengths, models=models), 80, shuffle=True, seed=1)
    assert not mixed.warnings and mixed.pool.models != models
    # A trace replays by timestamp, not file order: no warning.
    assert not prepare_pool(_pool(lengths, models=models), 80, file_order=False).warnings


def test_loader_notes_pass_through() -> None:
    pool = _pool([5, 6])
    pool.meta["notes"] = ["log.jsonl: 'ts' read as epoch milliseconds"]
    assert prepare_pool(pool, 2).notes == pool.meta["notes"]


def test_arrival_spec_trace_unchanged() -> None:
    # The trace path keeps its own contiguous window (replace is ignored there).
    pool = _pool([5] * 10)
    pool.timestamps = np.arange(10, dtype=float)
    wl = build_workload(pool, 10, 0, rate=1.0, arrival=ArrivalSpec("trace"), replace=True)
    assert len(wl.jobs) == 10
