"""Load generator pieces that need no engine: workload, arrivals, stats, the client."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.serve.client import RequestResult, request_body
from ssjf.bench.serve.figures import summarize
from ssjf.bench.serve.items import (
    TrainingRecord,
    WorkItem,
    load_alpaca_training,
    load_alpaca_workload,
    poisson_arrivals,
    read_alpaca_records,
    split_by_prompt,
)
from ssjf.bench.serve.replay import estimate_sources
from ssjf.stats import kendall_tau_b


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def _rec(pid: int, n: int, gen: str = "g") -> dict[str, Any]:
    return {"prompt_id": pid, "generator": gen, "instruction": f"p{pid}", "output_tokens": n}


def test_alpaca_workload_caps_lengths_and_keeps_one_generator(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "a.jsonl.gz", [_rec(0, 10), _rec(1, 900), _rec(0, 5, gen="other")]
    )
    items = load_alpaca_workload(path, generator="g", max_tokens_cap=512)
    assert [(i.prompt, i.max_tokens, i.true_tokens) for i in items] == [
        ("p0", 10, 10),
        ("p1", 512, 900),
    ]


def test_bad_records_name_the_file_line_and_field(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl.gz", [_rec(0, 10), "{oops"])
    with pytest.raises(ValueError, match=r"bad.jsonl.gz:2: invalid JSON"):
        read_alpaca_records(path, "g")
    bad = _rec(0, 10)
    bad["output_tokens"] = "ten"
    path = _write_jsonl(tmp_path / "bad2.jsonl.gz", [bad])
    with pytest.raises(ValueError, match=r"bad2.jsonl.gz:1: field 'output_tokens'"):
        read_alpaca_records(path, "g")
    with pytest.raises(ValueError, match="no records for generator 'nobody'"):
        read_alpaca_records(_write_jsonl(tmp_path / "ok.jsonl.gz", [_rec(0, 1)]), "nobody")


def test_alpaca_training_takes_every_generator_of_the_given_prompts_only(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "a.jsonl.gz",
        [_rec(0, 10), _rec(1, 900), _rec(0, 700, gen="other"), _rec(2, 3, gen="other")],
    )
    recs = load_alpaca_training({"0", "1"}, path, max_tokens_cap=512)
    assert recs == [
        TrainingRecord("p0", "g", 10.0),
        TrainingRecord("p1", "g", 512.0),
        TrainingRecord("p0", "other", 512.0),
    ]
    assert load_alpaca_training({"0"}, path, generators={"other"}) == [
        TrainingRecord("p0", "other", 700.0)
    ]
    nogen = {"prompt_id": 0, "instruction": "p", "output_tokens": 1}
    with pytest.raises(ValueError, match="field 'generator'"):
        load_alpaca_training({"0"}, _write_jsonl(tmp_path / "b.jsonl.gz", [nogen]))


def test_estimate_sources_reads_the_gateway_counter() -> None:
    page = "\n".join(
        [
            "# HELP ssjf_gateway_estimates_total where each request's estimate came from",
            "# TYPE ssjf_gateway_estimates_total counter",
            'ssjf_gateway_estimates_total{source="predictor"} 498.0',
            'ssjf_gateway_estimates_total{source="timeout"} 2.0',
            'ssjf_gateway_estimates_created{source="predictor"} 1.7e+09',
            "ssjf_gateway_queue_length 0.0",
        ]
    )
    assert estimate_sources(page) == {"predictor": 498, "timeout": 2}
    assert estimate_sources("") == {}


def test_split_by_prompt_never_shares_a_prompt() -> None:
    items = [
        WorkItem(id=f"{p}-{k}", prompt="x", max_tokens=1, prompt_id=str(p))
        for p in range(20)
        for k in range(3)
    ]
    train, test = split_by_prompt(items, 5, seed=1)
    assert len({i.prompt_id for i in test}) == 5
    assert not {i.prompt_id for i in train} & {i.prompt_id for i in test}
    assert len(train) + len(test) == len(items)
    assert split_by_prompt(items, 5, seed=1)[1] == test  # deterministic


@given(st.integers(1, 300), st.floats(0.1, 50), st.integers(0, 10))
@settings(max_examples=30, deadline=None)
def test_poisson_arrivals_are_sorted_and_start_at_zero(n: int, rate: float, seed: int) -> None:
    ts = poisson_arrivals(n, rate, seed)
    assert len(ts) == n and ts[0] == 0.0
    assert all(b >= a for a, b in itertools.pairwise(ts))


def test_poisson_arrivals_have_the_asked_rate() -> None:
    ts = poisson_arrivals(20_000, 4.0, seed=3)
    assert ts[-1] / (len(ts) - 1) == pytest.approx(0.25, rel=0.03)
    with pytest.raises(ValueError):
        poisson_arrivals(3, 0.0)


def test_replay_summary() -> None:
    rs = [
        RequestResult(
            id="a", max_tokens=3, sent=0.0, end=1.0, first_token=0.5, ok=True, completion_tokens=3
        ),
        RequestResult(
            id="b", max_tokens=2, sent=1.0, end=4.0, first_token=1.5, ok=True, completion_tokens=2
        ),
        RequestResult(id="c", max_tokens=2, sent=2.0, end=2.5, ok=False, error="boom"),
    ]
    s = summarize(rs)
    assert (s.n, s.ok, s.errors) == (3, 2, 1)
    assert s.jct_mean == pytest.approx(2.0)
    assert s.jct_p50 == pytest.approx(2.0)  # linear interpolation between 1 and 3
    assert s.ttft_mean == pytest.approx(0.5)
    assert s.throughput_rps == pytest.approx(2 / 4.0)
    assert s.exact_tokens == 1.0


def test_request_body_enforces_exact_length_and_passes_extras() -> None:
    item = WorkItem(id="a", prompt="hi", max_tokens=7)
    chat = request_body(item, "m", "chat", stream=True, extra={"priority": 3})
    assert chat["max_tokens"] == 7 and chat["ignore_eos"] is True
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert chat["stream_options"] == {"include_usage": True} and chat["priority"] == 3
    plain = request_body(item, "m", "completions", stream=False)
    assert plain["prompt"] == "hi" and "stream" not in plain


def test_exported_workload_replays_in_the_simulator(tmp_path: Path) -> None:
    from ssjf.bench.serve.run import export_workload
    from ssjf.workload.sources import load_table, parse_columns

    items = [
        WorkItem(
            id=f"alpaca-{i}", prompt=f"prompt {i}", max_tokens=n, true_tokens=t, prompt_id=str(i)
        )
        for i, (n, t) in enumerate([(10, 10), (512, 900), (77, 77)])
    ]
    path = tmp_path / "w" / "bench.jsonl"
    export_workload(path, items, [12.5, 300.0, 60.0])
    pool = load_table(path, parse_columns("predicted=predicted"))
    assert pool.output_tokens.tolist() == [10, 512, 77]  # the replayed (capped) lengths
    assert pool.prompts == ["prompt 0", "prompt 1", "prompt 2"]
    assert pool.estimates is not None
    assert [e.point for e in pool.estimates] == [12.5, 300.0, 60.0]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["true_tokens"] for r in rows] == [10, 900, 77]
    # Without a predictor the rows carry no estimate; a count mismatch is refused.
    export_workload(path, items, None)
    assert "predicted" not in json.loads(path.read_text().splitlines()[0])
    with pytest.raises(ValueError, match="2 estimates for 3 items"):
        export_workload(path, items, [1.0, 2.0])


def test_bench_serve_export_only_writes_the_workload_and_starts_no_engine(tmp_path: Path) -> None:
    from ssjf.bench.serve.config import ServeBenchConfig
    from ssjf.bench.serve.items import ALPACA_EVAL
    from ssjf.bench.serve.run import run_serve_bench
    from ssjf.workload.data import find_data_file

    if find_data_file(ALPACA_EVAL) is None:
        pytest.skip("no AlpacaEval prompts (SSJF_DATA_DIR): the bench replays them")
    pytest.importorskip("sklearn", reason="the tfidf family needs scikit-learn")
    with pytest.raises(ValueError, match="export_only needs export_workload"):
        run_serve_bench(ServeBenchConfig(export_only=True), log=lambda m: None)
    path = tmp_path / "bench.jsonl"
    cfg = ServeBenchConfig(
        requests=30,
        predictor="tfidf",
        train_all_generators=False,
        export_workload=path,
        export_only=True,
        engine_url="http://127.0.0.1:9",  # never contacted
        model="gpt-3.5-turbo-1106",
    )
    out = run_serve_bench(cfg, log=lambda m: None)
    assert out["configs"] == []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 30 and len({r["prompt_id"] for r in rows}) == 30
    assert all(1 <= r["output_tokens"] <= 512 and r["predicted"] > 0 for r in rows)
    tau = kendall_tau_b([r["predicted"] for r in rows], [r["output_tokens"] for r in rows])
    assert tau == pytest.approx(out["meta"]["predictor_kendall_tau"])
