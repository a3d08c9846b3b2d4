"""Retraining in the simulator: causal, swaps change estimates only after the swap."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.calibration import CalibrationSettings
from ssjf.estimate import LengthEstimate
from ssjf.request import Request
from ssjf.retrain import Retrainer, RetrainSettings
from ssjf.sim import SerialEngine, simulate
from ssjf.sim.calibration import CalibrationFeedback
from ssjf.sim.cost import paper_linear
from ssjf.sim.engines.base import Feedback
from ssjf.sim.job import Job
from ssjf.sim.retrain import RetrainFeedback
from tests.sim.online_factories import WordMean, records, shipped, stream_jobs

BASE = records(60, ["a", "b"], seed=0, tag="t")
SHIPPED = shipped(BASE)
FAST = RetrainSettings(every=10, min_records=10, holdout=4, max_records=1000)
NEVER = RetrainSettings(min_records=10**6, max_records=10**6)
CAL = CalibrationSettings(prior_count=1)


def feedback(
    rs: RetrainSettings = FAST, predictor: WordMean = SHIPPED, calibrate: bool = True
) -> RetrainFeedback:
    return RetrainFeedback(Retrainer(predictor, rs, base=BASE), CAL, calibrate=calibrate)


def run(jobs: list[Job], fb: Feedback | None) -> np.ndarray:
    res = simulate(jobs, SerialEngine(), "ssjf", cost=paper_linear(), feedback=fb)
    return res.predicted_tokens


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(20, 80),
    cut=st.floats(0.0, 1.0),
    factor=st.integers(2, 6),
    calibrate=st.booleans(),
)
def test_estimates_never_read_own_or_later_lengths(
    seed: int, n: int, cut: float, factor: int, calibrate: bool
) -> None:
    # Lengthen request k and every later one: estimates of requests 0..k must not move.
    jobs = stream_jobs(SHIPPED, n, seed, gap=0.9)
    k = min(int(cut * n), n - 1)
    changed = [
        Job(j.request, j.output_tokens * factor if i >= k else j.output_tokens)
        for i, j in enumerate(jobs)
    ]
    a = run(jobs, feedback(calibrate=calibrate))
    b = run(changed, feedback(calibrate=calibrate))
    assert np.array_equal(a[: k + 1], b[: k + 1])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 80), cut=st.floats(0.1, 0.9))
def test_estimates_made_by_t_ignore_completions_after_t(seed: int, n: int, cut: float) -> None:
    # Lengthen every request that completes after time t: no estimate made by t may change
    # (the schedule up to t is the same, and those completions had not happened yet).
    jobs = stream_jobs(SHIPPED, n, seed, gap=0.9)
    fb = feedback()
    a = simulate(jobs, SerialEngine(), "ssjf", cost=paper_linear(), feedback=fb)
    t = float(np.quantile(a.completion, cut))
    later = a.completion > t
    changed = [Job(j.request, j.output_tokens * 3 if later[i] else j.output_tokens)
               for i, j in enumerate(jobs)]  # fmt: skip
    b = run(changed, feedback())
    early = a.arrival < t
    assert np.array_equal(a.predicted_tokens[early], b[early])


def test_a_completion_after_an_arrival_is_not_used_for_it() -> None:
    fb = feedback(RetrainSettings(every=1, min_records=4, holdout=2))
    reqs = [Request(i, float(i), 1, prompt=f"long q{i}", model="x") for i in range(5)]
    for r in reqs:
        fb.on_arrival(r)
    for i, r in enumerate(reqs):  # reported early, as the event-skipping engine may
        fb.on_complete(r, 500, now=10.0 + i)
    fb.on_arrival(Request(5, 9.99, 1, prompt="long q5", model="x"))
    assert fb.completions == 0 and fb.retrainer.completions == 0
    assert fb.calibrator is not None and fb.calibrator.completions == 0
    fb.on_arrival(Request(6, 10.0, 1, prompt="long q6", model="x"))  # finished at 10.0: known
    assert fb.completions == 1 and fb.retrainer.completions == 1
    fb.on_arrival(Request(7, 13.5, 1, prompt="long q7", model="x"))
    assert fb.completions == 4 and [e.completions for e in fb.events] == [4]
    assert fb.events[0].arrivals == 7  # triggered while request 7 arrived


def test_swap_changes_estimates_only_from_the_swap_on() -> None:
    jobs = stream_jobs(SHIPPED, 120, seed=3, gap=1.1)
    fb = feedback()
    with_retrain = run(jobs, fb)
    without = run(jobs, feedback(NEVER))
    swaps = [e for e in fb.events if e.event.swapped]
    assert swaps, "the unseen generators should make the first candidate win"
    first = swaps[0].arrivals  # the request whose arrival applied the due completion
    assert np.array_equal(with_retrain[:first], without[:first])
    assert not np.array_equal(with_retrain[first:], without[first:])
    # The calibrator restarted at the last swap: it holds only the completions since.
    assert fb.calibrator is not None
    assert fb.calibrator.completions == fb.completions - swaps[-1].completions
    assert fb.retrainer.version == len(swaps)


def test_without_retrains_it_is_calibration_of_the_same_predictor() -> None:
    jobs = stream_jobs(SHIPPED, 80, seed=5, gap=1.0)
    a = run(jobs, feedback(NEVER))
    b = run(jobs, CalibrationFeedback(CAL))
    assert np.allclose(a, b, rtol=1e-12)
    raw = run(jobs, feedback(NEVER, calibrate=False))
    assert np.allclose(raw, [j.request.estimate.point for j in jobs])


def test_requests_without_prompt_keep_their_estimate() -> None:
    jobs = stream_jobs(SHIPPED, 80, seed=7, gap=1.0, no_prompt=0.3)
    bare = np.array([j.request.prompt is None for j in jobs])
    given_points = np.array([j.request.estimate.point for j in jobs])
    fb = feedback()
    got = run(jobs, fb)
    assert bare.any() and np.array_equal(got[bare], given_points[bare])
    assert fb.estimated == int((~bare).sum())
    assert fb.retrainer.completions <= int((~bare).sum())


def test_a_failed_retrain_leaves_the_replay_serving_the_old_predictor() -> None:
    broken = WordMean(fail=True)
    broken.__dict__.update(SHIPPED.__dict__)  # fitted state of the shipped one
    broken.params = {"fail": True}  # its candidates' fits raise
    jobs = stream_jobs(SHIPPED, 60, seed=11, gap=1.0)
    fb = feedback(predictor=broken)
    got = run(jobs, fb)
    assert fb.events and all(e.event.error is not None for e in fb.events)
    assert fb.retrainer.version == 0 and fb.retrainer.predictor is broken
    assert np.array_equal(got, run(jobs, feedback(NEVER)))


def test_point_estimates_are_given_quantiles_by_calibration() -> None:
    fb = feedback()
    req = Request(0, 0.0, 1, estimate=LengthEstimate(3.0), prompt="short q", model="a")
    fb.on_arrival(req)
    assert req.estimate is not None and req.estimate.quantiles  # the calibrator's prior shape
    assert req.estimate.point == SHIPPED.predict(["short q"], ["a"])[0].point
