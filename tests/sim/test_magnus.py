"""Magnus batch mode and the fixed-size batch under a KV budget: one memory rule for both."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ssjf.bench.magnus import at_zero, safe_batch
from ssjf.cli import app
from ssjf.request import Request
from ssjf.sim import Job, simulate
from ssjf.sim.cost import default_affine, paper_linear
from ssjf.sim.engines import BatchEngine, MagnusEngine, RunContext, parse_engine
from ssjf.sim.engines.magnus import _Batch
from ssjf.sim.engines.serving_time import ServingTimeModel, batch_features

from .factories import job

COST = default_affine()


class Completions:
    """Feedback that records every completion it is told about."""

    def __init__(self) -> None:
        self.ids: list[int | str] = []

    def on_arrival(self, req: Request) -> None:
        pass

    def on_complete(self, req: Request, output_tokens: int, now: float) -> None:
        self.ids.append(req.id)


jobs_strategy = st.lists(
    st.tuples(
        st.floats(0, 50),  # arrival
        st.integers(0, 60),  # prompt
        st.integers(1, 120),  # true output
        st.floats(0.2, 5.0),  # prediction / truth
    ),
    min_size=1,
    max_size=40,
)


def make_jobs(rows: list[tuple[float, int, int, float]]) -> list[Job]:
    return [job(i, a, p, n, n * f) for i, (a, p, n, f) in enumerate(rows)]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    rows=jobs_strategy,
    extra=st.integers(0, 400),
    oom=st.sampled_from(["restart", "keep"]),
    which=st.sampled_from(["magnus", "batch"]),
    margin=st.sampled_from([0.0, 0.5]),
)
def test_every_request_completes_exactly_once(rows, extra, oom, which, margin) -> None:
    jobs = make_jobs(rows)
    kv = max(max(j.request.prompt_tokens, 1) + j.output_tokens for j in jobs) + extra
    engine = (
        MagnusEngine(kv, oom=oom, margin=margin)
        if which == "magnus"
        else BatchEngine(4, kv_tokens=kv, oom=oom)
    )
    seen = Completions()
    res = simulate(jobs, engine, "fcfs", cost=COST, feedback=seen)
    assert sorted(seen.ids) == list(range(len(jobs)))
    assert np.all(np.isfinite(res.completion))
    assert np.all(res.first_scheduled >= res.arrival - 1e-12)
    assert np.all(res.first_token <= res.completion)
    # Halving bounds the aborts of any request: a batch of one always fits.
    assert res.preemptions.max() <= math.ceil(math.log2(len(jobs))) + 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=jobs_strategy, extra=st.integers(0, 400), margin=st.sampled_from([0.0, 0.5, 1.0]))
def test_batches_fit_the_budget_by_prediction(rows, extra, margin) -> None:
    jobs = make_jobs(rows)
    kv = max(max(j.request.prompt_tokens, 1) + j.output_tokens for j in jobs) + extra
    engine = MagnusEngine(kv, margin=margin)
    chosen: list[list[int]] = []
    reserved: dict[int, int] = {}

    class Spy(MagnusEngine):
        def form(self, ctx: RunContext) -> list[_Batch]:
            out = MagnusEngine.form(self, ctx)
            for b in out:
                for i in b.members:
                    r = ctx.reqs[i]
                    reserved[i] = math.ceil(max(1, math.ceil(r.predicted_remaining)) * (1 + margin))
            return out

        @staticmethod
        def choose(batches: list[_Batch], model: ServingTimeModel, now: float) -> _Batch:
            b = MagnusEngine.choose(batches, model, now)
            chosen.append(list(b.members))
            return b

    spy = Spy(engine.kv_tokens, margin=margin)
    simulate(jobs, spy, "fcfs", cost=COST)
    prompts = [max(j.request.prompt_tokens, 1) for j in jobs]
    for members in chosen:
        need = len(members) * (max(prompts[i] for i in members) + max(reserved[i] for i in members))
        assert len(members) == 1 or need <= kv


def overflow_jobs(n: int = 10) -> list[Job]:
    """Predicted 10 tokens, truly 100: a batch sized by prediction must overflow."""
    return [job(i, 0.0, 1, 100, 10.0) for i in range(n)]


@pytest.mark.parametrize(
    "engine_of",
    [lambda o: MagnusEngine(110, oom=o), lambda o: BatchEngine(10, kv_tokens=110, oom=o)],
)
def test_overflow_aborts_splits_and_counts(engine_of) -> None:
    jobs = overflow_jobs()
    restart = simulate(jobs, engine_of("restart"), "fcfs", cost=COST)
    keep = simulate(jobs, engine_of("keep"), "fcfs", cost=COST)
    for res in (restart, keep):
        assert np.all(np.isfinite(res.completion))
        assert res.preemptions.sum() > 0
        assert np.all(res.preemptions >= 1)  # the first batch of ten overflows for everyone
        # ... after 10 steps (110 // 10 - 1 prompt token): each drops 1 + 10 cached tokens.
        assert np.all(res.recomputed_tokens >= 11)
    # Keeping the tokens of an aborted batch can only save time.
    assert keep.completion.max() < restart.completion.max()
    # With true predictions nothing overflows.
    exact = [job(i, 0.0, 1, 100, 100.0) for i in range(10)]
    clean = simulate(exact, MagnusEngine(110), "fcfs", cost=COST)
    assert clean.preemptions.sum() == 0 and clean.recomputed_tokens.sum() == 0


def test_batch_without_overflow_matches_unbounded_batch() -> None:
    jobs = [job(i, 0.5 * i, 5 + i % 7, 1 + (13 * i) % 50, None) for i in range(60)]
    a = simulate(jobs, BatchEngine(8), "fcfs", cost=COST)
    b = simulate(jobs, BatchEngine(8, kv_tokens=10**9), "fcfs", cost=COST)
    assert np.array_equal(a.completion, b.completion)
    assert np.array_equal(a.first_token, b.first_token)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    obs=st.lists(
        st.tuples(st.integers(1, 64), st.integers(1, 500), st.integers(0, 3000), st.floats(0, 5)),
        min_size=1,
        max_size=40,
    ),
    cut=st.floats(0, 200),
)
def test_serving_time_model_is_causal(obs, cut) -> None:
    full = ServingTimeModel(window=16)
    past = ServingTimeModel(window=16)
    t = 0.0
    for m, length, prompt, gap in obs:
        t += gap
        x = batch_features(m, length, prompt)
        seconds = 0.05 * length + 0.001 * m * length + 1e-4 * prompt
        full.observe(x, seconds, t)
        if t <= cut:
            past.observe(x, seconds, t)
    probe = batch_features(8, 100, 400)
    assert full.predict(probe, cut) == past.predict(probe, cut)
    assert full.usable(cut) == len(past)


def test_serving_time_model_learns_a_linear_cost() -> None:
    model = ServingTimeModel()
    assert model.predict(batch_features(4, 10, 10), 0.0) is None
    rng = np.random.default_rng(0)
    for k in range(40):
        m, length, prompt = (
            int(rng.integers(1, 64)),
            int(rng.integers(1, 500)),
            int(rng.integers(0, 3000)),
        )
        model.observe(
            batch_features(m, length, prompt), 0.3 + 0.05 * length + 0.001 * m * length, float(k)
        )
    est = model.predict(batch_features(16, 200, 100), 100.0)
    assert est == pytest.approx(0.3 + 0.05 * 200 + 0.001 * 16 * 200, rel=1e-6)
    with pytest.raises(ValueError, match="time order"):
        model.observe(batch_features(1, 1, 1), 1.0, 0.0)


def two_class_workload() -> list[Job]:
    """Saturated: 90 short (10 tokens) and 30 long (200 tokens) answers, mixed, exact predictions."""
    return [
        job(i, 0.0, 10, 200 if i % 4 == 0 else 10, 200.0 if i % 4 == 0 else 10.0)
        for i in range(120)
    ]


@pytest.mark.parametrize("oom", ["restart", "keep"])
def test_magnus_beats_fixed_sizes_on_a_saturated_workload(oom) -> None:
    jobs = two_class_workload()
    kv = 4200
    magnus = simulate(jobs, MagnusEngine(kv, oom=oom), "fcfs", cost=COST).completion.max()
    safe = safe_batch(jobs, kv)
    assert safe == 4200 // 210
    fixed_safe = simulate(jobs, BatchEngine(safe, kv_tokens=kv, oom=oom), "fcfs", cost=COST)
    assert fixed_safe.preemptions.sum() == 0
    assert fixed_safe.completion.max() / magnus >= 2.0  # short answers share one big batch
    if oom == "restart":
        # Overflow costs the batch's work, so no fixed size does better. (With
        # ``keep`` a huge fixed batch that overflows and splits adapts to memory
        # too, and can edge past Magnus: see docs/simulator.md.)
        for b in range(1, 121):
            fixed = simulate(jobs, BatchEngine(b, kv_tokens=kv, oom=oom), "fcfs", cost=COST)
            assert magnus < fixed.completion.max(), b


def test_hrrn_serves_the_short_batch_first_and_ages_the_rest() -> None:
    jobs = two_class_workload()
    res = simulate(jobs, MagnusEngine(4200), "fcfs", cost=paper_linear())
    long = res.completion[0::4]
    short = np.delete(res.completion, np.arange(0, 120, 4))
    assert short.max() < long.min()  # at t=0 every wait is 0: the shortest estimate wins


def test_magnus_ignores_the_policy() -> None:
    jobs = [job(i, 0.3 * i, 4, 1 + (7 * i) % 90, 1 + (5 * i) % 90) for i in range(50)]
    a = simulate(jobs, MagnusEngine(2000), "fcfs", cost=COST)
    b = simulate(jobs, MagnusEngine(2000), "ssjf", cost=COST)
    assert np.array_equal(a.completion, b.completion)


def test_requests_need_predictions() -> None:
    with pytest.raises(ValueError, match="no predicted length"):
        simulate([job(0, 0.0, 1, 5, None)], MagnusEngine(100), "fcfs", cost=COST)


@pytest.mark.parametrize("spec", ["magnus:100", "batch:4:kv=100"])
def test_unfit_requests_are_named_with_a_fix(spec) -> None:
    engine = parse_engine(spec)
    prompts, lengths = [10, 50, 1], [20, 80, 99]
    assert engine.unfit(prompts, lengths) == [1]
    fix = engine.fit_fix(prompts, lengths)
    assert fix is not None and "130" in fix
    assert parse_engine(fix).unfit(prompts, lengths) == []
    assert parse_engine(fix).fit_fix(prompts, lengths) is None
    with pytest.raises(ValueError, match=r"request #1: 50 prompt \+ 80 output.*KV budget of 100"):
        engine.validate(prompts, lengths)


@pytest.mark.parametrize(
    "spec",
    [
        "magnus:16384",
        "magnus:800:max=16:band=2:margin=0.5:window=32:oom=keep",
        "batch:8:kv=4096",
        "batch:8:timeout=2:group:kv=4096:oom=keep",
    ],
)
def test_specs_round_trip(spec) -> None:
    engine = parse_engine(spec)
    assert parse_engine(engine.spec).spec == engine.spec
    assert engine.spec == spec


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("magnus", "give the KV budget"),
        ("magnus:lots", "KV budget must be an integer"),
        ("magnus:0", "kv_tokens must be >= 1"),
        ("magnus:100:foo=1", "unknown option 'foo'"),
        ("magnus:100:band=0.5", "band must be >= 1"),
        ("magnus:100:band=wide", "band must be a number"),
        ("magnus:100:margin=-1", "margin must be >= 0"),
        ("magnus:100:max=0", "max_batch must be >= 1"),
        ("magnus:100:oom=crash", "oom must be one of restart, keep"),
        ("batch:8:kv=lots", "kv must be an integer"),
        ("batch:8:kv=0", "kv_tokens must be >= 1"),
        ("batch:8:oom=crash", "oom must be one of"),
    ],
)
def test_spec_errors(spec, match) -> None:
    with pytest.raises(ValueError, match=match):
        parse_engine(spec)


def test_at_zero_keeps_everything_but_arrival() -> None:
    jobs = [job(i, 3.0 * i, i, 5, 4.0) for i in range(3)]
    out = at_zero(jobs)
    assert [j.request.arrival for j in out] == [0.0] * 3
    assert [j.output_tokens for j in out] == [5] * 3
    assert [j.request.estimate for j in out] == [j.request.estimate for j in jobs]


def test_bench_magnus_cli_writes_ratios(tmp_path) -> None:
    out = tmp_path / "magnus.json"
    result = CliRunner().invoke(
        app,
        ["bench", "magnus", "-w", "synthetic", "-n", "200", "--kv", "8000", "--estimates",
         "source,noisy:0", "--margins", "0,0.5", "--oom", "restart", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [s["estimates"] for s in data["summary"]] == ["source", "noisy:0"]
    for s in data["summary"]:
        assert s["ratio_vs_safe"] == pytest.approx(s["magnus_rps"] / s["safe_rps"])
        assert s["best_magnus_rps"] >= s["magnus_rps"]
        assert s["best_fixed_rps"] >= s["safe_rps"]
    exact = data["summary"][1]
    assert exact["ratio_vs_safe"] > 1.0  # exact lengths: never worse than the overflow-free size
    bad = CliRunner().invoke(app, ["bench", "magnus", "-w", "synthetic", "--oom", "crash"])
    assert bad.exit_code != 0 and "crash" in bad.output
