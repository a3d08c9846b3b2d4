"""Cost models: the paper's linear model, affine closed forms and fit, the splitwise table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.sim import AffineCost, SerialEngine, TableCost, paper_linear, parse_cost_model, simulate
from ssjf.sim.cost import CostModel, default_affine
from tests.sim.factories import job

SPLITWISE = (
    Path(os.environ["SSJF_DATA_DIR"]) / "perf/splitwise_perf_model.csv"
    if os.environ.get("SSJF_DATA_DIR")
    else None
)
needs_splitwise = pytest.mark.skipif(
    SPLITWISE is None or not SPLITWISE.exists(),
    reason="SSJF_DATA_DIR with perf/splitwise_perf_model.csv not available",
)


class LoopCost(CostModel):
    """The generic (looping) helpers on top of an affine step time."""

    def __init__(self, inner: AffineCost) -> None:
        self.inner = inner

    def step_time(self, prefill_tokens: int, num_seqs: int, context_tokens: int,
                  new_seqs: int = 0) -> float:  # fmt: skip
        return self.inner.step_time(prefill_tokens, num_seqs, context_tokens, new_seqs)


@pytest.mark.parametrize("length", [1, 2, 7, 100, 1000])
def test_paper_linear_serial_job_costs_exactly_0_1_plus_0_02_l(length: int) -> None:
    cost = paper_linear()
    assert cost.serial_job_time(123, length) == pytest.approx(0.1 + 0.02 * length, abs=1e-12)
    res = simulate([job(0, 0.0, 50, length)], SerialEngine(), "fcfs", cost=cost)
    assert res.completion[0] == pytest.approx(0.1 + 0.02 * length, abs=1e-12)
    assert res.first_token[0] == pytest.approx(0.12, abs=1e-12)


coef = st.floats(0.0, 0.1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    a=coef, c=coef, d=st.floats(0.0, 1e-3), n=st.integers(1, 64),
    ctx=st.integers(0, 100_000), k=st.integers(0, 300),
)  # fmt: skip
def test_affine_decode_run_closed_form_matches_loop(
    a: float, c: float, d: float, n: int, ctx: int, k: int
) -> None:
    cost = AffineCost(a=a + 1e-4, c=c, d=d)
    looped = LoopCost(cost).decode_run_time(n, ctx, k)
    assert cost.decode_run_time(n, ctx, k) == pytest.approx(looped, rel=1e-12, abs=1e-15)


@settings(max_examples=80, deadline=None)
@given(
    a=st.floats(1e-4, 0.1), d=st.floats(0.0, 1e-4), n=st.integers(1, 64),
    ctx=st.integers(0, 50_000), frac=st.floats(1e-6, 1.0),
)  # fmt: skip
def test_steps_to_reach_is_the_fewest_whole_steps(
    a: float, d: float, n: int, ctx: int, frac: float
) -> None:
    target = frac * 500 * a  # at most ~500 steps, so the looping model stays quick
    for cost in (AffineCost(a=a, d=d), LoopCost(AffineCost(a=a, d=d))):
        k = cost.decode_steps_to_reach(n, ctx, target)
        assert k >= 1
        assert cost.decode_run_time(n, ctx, k) >= target
        assert cost.decode_run_time(n, ctx, k - 1) < target


def test_affine_fit_recovers_known_coefficients() -> None:
    true = AffineCost(a=0.03, b=2e-4, c=1e-3, d=3e-7, e=0.02)
    rows = []
    for p in (0, 100, 512, 2048):
        for n in (1, 4, 16, 32):
            for ctx in (0, 1000, 20_000):
                for new in (0, 1, min(n, 3)):
                    rows.append((p, n, ctx, new, true.step_time(p, n, ctx, new)))
    fitted = AffineCost.fit(rows)
    for name in "abcde":
        assert getattr(fitted, name) == pytest.approx(getattr(true, name), rel=1e-6, abs=1e-12)


def test_affine_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        AffineCost.fit([(1, 1, 1, 1, 0.1)])
    with pytest.raises(ValueError, match="measurement 1: expected 5 values"):
        AffineCost.fit([(1, 1, 1, 1, 0.1), (1, 2, 3)])
    with pytest.raises(ValueError, match="measurement 0: field 'seconds'"):
        AffineCost.fit([(1, 1, 1, 1, float("nan")), (1, 2, 3, 0, 0.2)])


def test_affine_from_file_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "cost.json"
    good.write_text(json.dumps({"a": 0.01, "d": 1e-6}))
    assert AffineCost.from_file(good) == AffineCost(a=0.01, d=1e-6)
    assert parse_cost_model(f"affine:{good}") == AffineCost(a=0.01, d=1e-6)
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 0.01,\n "x": 2}')
    with pytest.raises(ValueError, match=r"bad.json: unknown field"):
        AffineCost.from_file(bad)
    bad.write_text('{"a": 0.01,\n "b": }')
    with pytest.raises(ValueError, match=r"bad.json: line 2"):
        AffineCost.from_file(bad)
    bad.write_text('{"a": -1}')
    with pytest.raises(ValueError, match=r"AffineCost.a must be"):
        AffineCost.from_file(bad)
    with pytest.raises(ValueError, match="not found"):
        AffineCost.from_file(tmp_path / "missing.json")


def test_parse_cost_model_specs() -> None:
    assert parse_cost_model("paper") == paper_linear()
    assert parse_cost_model("affine") == default_affine()
    with pytest.raises(ValueError, match="unknown cost model"):
        parse_cost_model("quadratic")
    with pytest.raises(ValueError, match="MODEL/HARDWARE/TP"):
        parse_cost_model("table:llama2-70b")


@needs_splitwise
def test_table_cost_matches_measured_rows() -> None:
    import csv
    from collections import defaultdict

    assert SPLITWISE is not None
    table = TableCost(SPLITWISE, "llama2-70b", "a100-80gb", 8)
    prompt: dict[int, list[float]] = defaultdict(list)
    token: dict[int, list[float]] = defaultdict(list)
    with SPLITWISE.open() as fh:
        for r in csv.DictReader(fh):
            if (r["model"], r["hardware"], r["tensor_parallel"]) == (
                "llama2-70b",
                "a100-80gb",
                "8",
            ):
                total = int(r["prompt_size"]) * int(r["batch_size"])
                prompt[total].append(float(r["prompt_time"]) / 1000)
                token[int(r["batch_size"])].append(float(r["token_time"]) / 1000)
    for total, times in prompt.items():
        # A pure prefill step of `total` tokens finishing every sequence in it.
        assert table.step_time(total, 1, 0, 1) == pytest.approx(sum(times) / len(times), rel=1e-12)
    for batch, times in token.items():
        assert table.step_time(0, batch, 0, 0) == pytest.approx(sum(times) / len(times), rel=1e-12)
    # Between rows: linear interpolation.
    mid = table.step_time(0, 24, 0, 0)
    assert min(token[16][0], token[32][0]) * 0.9 < mid < max(sum(token[32]) / len(token[32]), 1)
    assert table.decode_run_time(8, 0, 10) == pytest.approx(10 * table.step_time(0, 8, 0))
    k = table.decode_steps_to_reach(8, 0, 1.0)
    assert table.decode_run_time(8, 0, k) >= 1.0 > table.decode_run_time(8, 0, k - 1)


@needs_splitwise
def test_table_cost_unknown_combo_lists_available() -> None:
    assert SPLITWISE is not None
    with pytest.raises(ValueError, match=r"available MODEL/HARDWARE/TP: .*llama2-70b/a100-80gb/8"):
        TableCost(SPLITWISE, "llama2-7b", "a100-80gb", 1)


def test_table_cost_bad_file_names_line_and_field(tmp_path: Path) -> None:
    header = (
        "model,hardware,prompt_size,batch_size,token_size,prompt_time,token_time,tensor_parallel\n"
    )
    bad = tmp_path / "perf.csv"
    bad.write_text(header + "m,h,512,1,128,100.0,50.0,1\nm,h,512,x,128,100.0,50.0,1\n")
    with pytest.raises(ValueError, match=r"perf.csv: line 3: field 'batch_size'"):
        TableCost(bad, "m", "h", 1)


def test_default_affine_is_plausible_for_a_13b_class_model() -> None:
    cost = default_affine()
    # A batch-1 decode step of a 7B-13B model on one GPU: tens of milliseconds.
    assert 0.01 < cost.step_time(0, 1, 1000) < 0.1
    assert math.isfinite(cost.serial_job_time(1000, 200))
