"""Calibration in the simulator: causal, identical on both continuous engines, and useful."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.runner import RunSettings, entry_calibration, parse_policies
from ssjf.calibration import CalibrationSettings
from ssjf.estimate import LengthEstimate
from ssjf.request import Request
from ssjf.sim import ContinuousEngine, SerialEngine, StepContinuousEngine, simulate
from ssjf.sim.calibration import CalibrationFeedback
from ssjf.sim.cost import paper_linear
from ssjf.sim.engines.arrivals import horizon
from ssjf.sim.job import Job
from tests.sim.factories import random_jobs


class Recording(CalibrationFeedback):
    """Also records each request's calibrated estimate, by request id."""

    def __init__(self, settings: CalibrationSettings | None = None) -> None:
        super().__init__(settings)
        self.seen: dict[object, LengthEstimate | None] = {}

    def on_arrival(self, req: Request) -> None:
        super().on_arrival(req)
        self.seen[req.id] = req.estimate


def mixed_jobs(seed: int, n: int, rate: float = 1.0) -> list[Job]:
    """Two models: "slow" answers 3x what the predictor says, "fine" as predicted."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        model = "slow" if rng.random() < 0.5 else "fine"
        pred = rng.randint(5, 60)
        true = max(1, round(pred * (3 if model == "slow" else 1) * rng.lognormvariate(0, 0.3)))
        req = Request(i, t, rng.randint(1, 50), estimate=LengthEstimate(pred), model=model)
        out.append(Job(req, true))
    return out


ENGINES = {
    "serial": SerialEngine(),
    "continuous": ContinuousEngine(4, 256, 16, 10_000),
    "step": StepContinuousEngine(4, 256, 16, 10_000),
}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 60),
    engine=st.sampled_from(sorted(ENGINES)),
    cut=st.floats(0.2, 0.9),
    factor=st.integers(2, 5),
)
def test_calibration_is_causal(seed: int, n: int, engine: str, cut: float, factor: int) -> None:
    # Lengthen every request that completes after time t: no estimate made by t may change
    # (the schedule up to t is the same, and those completions had not happened yet).
    jobs = mixed_jobs(seed, n, rate=2.0)
    eng, cost = ENGINES[engine], paper_linear()
    fb = Recording(CalibrationSettings(prior_count=1))
    res = simulate(jobs, eng, "ssjf", cost=cost, feedback=fb)
    t = float(np.quantile(res.completion, cut))
    later = res.completion > t
    changed = [
        Job(j.request, j.output_tokens * factor if later[i] else j.output_tokens)
        for i, j in enumerate(jobs)
    ]
    fb2 = Recording(CalibrationSettings(prior_count=1))
    simulate(changed, eng, "ssjf", cost=cost, feedback=fb2)
    for i, j in enumerate(jobs):
        if horizon(j.request.arrival) < t:
            assert fb2.seen[j.request.id] == fb.seen[j.request.id], i
    # Not vacuous: requests after the first completions were re-estimated.
    informed = [i for i, j in enumerate(jobs) if j.request.arrival > res.completion.min()]
    if informed:
        assert any(fb.seen[jobs[i].request.id] != jobs[i].request.estimate for i in informed)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 60),
    rate=st.sampled_from([0.5, 3.0, 30.0]),
    seqs=st.integers(1, 8),
    spare=st.sampled_from([0, 5, 10_000]),
    policy=st.sampled_from(["ssjf", "ssrpt", "fcfs"]),
    grid=st.booleans(),
)
def test_fast_engine_matches_reference_with_calibration(
    seed: int, n: int, rate: float, seqs: int, spare: int, policy: str, grid: bool
) -> None:
    jobs = random_jobs(seed, n, rate=rate, grid=grid)
    for i, j in enumerate(jobs):  # two models, and a few requests cut by max_tokens
        j.request.model = "ab"[i % 2]
        if i % 5 == 0:
            j.request.max_tokens = max(1, j.output_tokens // 2)
            j.output_tokens = j.request.max_tokens
    block = 16
    need = max(-(-(j.request.prompt_tokens + j.output_tokens) // block) for j in jobs)
    params = (seqs, seqs + 64, block, need + spare)
    cal = CalibrationSettings(prior_count=2, min_samples=3, window=16)
    a = Recording(cal)
    b = Recording(cal)
    fast = simulate(jobs, ContinuousEngine(*params), policy, cost=paper_linear(), feedback=a)
    ref = simulate(jobs, StepContinuousEngine(*params), policy, cost=paper_linear(), feedback=b)
    assert a.seen == b.seen
    np.testing.assert_array_equal(fast.predicted_tokens, ref.predicted_tokens)
    np.testing.assert_allclose(fast.completion, ref.completion, rtol=1e-9)
    np.testing.assert_array_equal(fast.preemptions, ref.preemptions)


def test_calibration_corrects_a_model_answering_three_times_longer() -> None:
    jobs = mixed_jobs(1, 600, rate=0.5)
    fb = CalibrationFeedback()
    res = simulate(jobs, SerialEngine(), "ssjf", cost=paper_linear(), feedback=fb)
    late = [i for i, j in enumerate(jobs) if i >= 300]
    raw = [j.request.estimate.point for j in jobs if j.request.estimate is not None]
    ratio = {
        m: np.median([res.predicted_tokens[i] / raw[i] for i in late if jobs[i].request.model == m])
        for m in ("slow", "fine")
    }
    assert 2.5 < ratio["slow"] / ratio["fine"] < 3.6
    assert fb.estimated == 600 and 590 <= fb.informed < 600
    # The first request saw no completion: its estimate is the predictor's point.
    assert res.predicted_tokens[0] == raw[0]


def test_runner_switches_calibration_per_entry() -> None:
    on, plain, off = parse_policies("ssjf:calibrate=true,ssjf,ssjf:calibrate=false")
    assert on.calibrate is True and on.params == {} and plain.calibrate is None
    assert entry_calibration(on, RunSettings()) == CalibrationSettings()
    assert entry_calibration(plain, RunSettings()) is None
    tuned = RunSettings(calibrate=CalibrationSettings(window=8))
    assert entry_calibration(plain, tuned) == CalibrationSettings(window=8)
    assert entry_calibration(off, tuned) is None
    try:
        parse_policies("ssjf:calibrate=3")
    except ValueError as e:
        assert "calibrate" in str(e)
    else:
        raise AssertionError("calibrate=3 was accepted")


def test_simulate_cli_calibrates(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ssjf.cli import app

    rows = [
        {"prompt_tokens": 10, "output_tokens": j.output_tokens, "model": j.request.model,
         "predicted": j.request.estimate.point if j.request.estimate else 1}
        for j in mixed_jobs(3, 300)
    ]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.json"
    args = ["simulate", "-w", f"jsonl:{path}", "-n", "300", "--seeds", "1", "--load", "0.9",
            "-p", "fcfs,ssjf,ssjf:calibrate=false", "--calibration", "window=64,sigma=0.5",
            "--json", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["settings"]["calibrate"]["window"] == 64
    by = {r["policy"]: r for r in data["rows"]}
    assert by["ssjf"]["calibrated_requests"] >= 290
    assert "calibrated_requests" not in by["ssjf:calibrate=false"]
    assert by["ssjf"]["jct_mean"] != by["ssjf:calibrate=false"]["jct_mean"]
    bad = CliRunner().invoke(app, [*args[:-2], "--calibration", "window=0"])
    assert bad.exit_code == 2 and "window" in bad.output
