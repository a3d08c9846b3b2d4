"""Calibration in the gateway: estimates corrected per model from the engine's usage."""

from __future__ import annotations

import httpx
import pytest

from ssjf.calibration import CalibrationSettings
from ssjf.estimate import LengthEstimate
from ssjf.gateway.calibration import GatewayCalibration
from ssjf.gateway.sse import length_finish

from .helpers import FakePredictor, completion, post_json


def _learn(cal: GatewayCalibration, **kw: object) -> bool:
    args: dict[str, object] = dict(
        model="m", raw=10.0, status=200, actual=30, limit=None, length_finish=False, n=1,
        min_output=0,
    )  # fmt: skip
    args.update(kw)
    return cal.learn(**args)  # type: ignore[arg-type]


def test_only_natural_single_successful_completions_teach() -> None:
    cal = GatewayCalibration(CalibrationSettings(), has_predictor=True)
    assert not _learn(cal, raw=None)  # not a calibrated estimate
    assert not _learn(cal, status=500)
    assert not _learn(cal, actual=None)  # no usage read
    assert not _learn(cal, n=2)  # one usage sum for several answers
    assert not _learn(cal, min_output=30)  # forced by the client
    assert cal.calibrator.completions == 0
    assert _learn(cal)
    assert cal.calibrator.completions == 1


def test_a_length_finish_or_the_limit_makes_a_lower_bound() -> None:
    def scale_after(**kw: object) -> float:
        cal = GatewayCalibration(CalibrationSettings(prior_count=0), has_predictor=True)
        _learn(cal, actual=10, **kw)
        _learn(cal, actual=40)
        return cal.calibrator.scale("m")

    exact = scale_after()
    assert scale_after(length_finish=True) > exact
    assert scale_after(limit=10) > exact
    assert scale_after(limit=11) == exact


def test_which_estimates_are_calibrated() -> None:
    with_predictor = GatewayCalibration(CalibrationSettings(), has_predictor=True)
    est = LengthEstimate(50.0)
    assert with_predictor.apply(est, "timeout", "m") == (est, None)  # fallback: not ours
    out, raw = with_predictor.apply(est, "predictor", "m")
    assert raw == 50.0 and out.point == 50.0 and out.quantiles  # a spread, same mean
    without = GatewayCalibration(CalibrationSettings(), has_predictor=False)
    assert without.apply(est, "fallback", "m")[1] == 50.0


def test_length_finish_is_read_from_bodies_and_events() -> None:
    assert length_finish(b'{"choices":[{"finish_reason": "length"}]}')
    assert length_finish(b'data: {"choices":[{"finish_reason":"length"}]}\n\n')
    assert not length_finish(b'{"choices":[{"finish_reason":"stop","text":"length"}]}')


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_usage_teaches_the_gateway_a_slow_model(engine, start_gateway, stream: bool) -> None:
    _, up = engine
    gw = start_gateway(FakePredictor(), upstreams=[up.url], calibration_prior_count=1)
    cal = gw.gw.calibration
    assert cal is not None
    # "slow" answers 3x its prediction (the fake engine generates max_tokens tokens and
    # says finish_reason "length": censored, a lower bound of 3x).
    n = 12
    for i in range(n):
        body = completion("len=10 ask", 30, model="slow", stream=stream)
        if stream:
            with httpx.stream("POST", gw.url + "/v1/completions", json=body) as s:
                assert s.status_code == 200
                assert b"usage" not in b"".join(s.iter_raw())  # stripped: not asked for
        else:
            assert post_json(gw.url + "/v1/completions", body).status_code == 200
        gw.wait_for(lambda g, k=i + 1: g.calibration.calibrator.completions >= k)
    assert cal.calibrator.seen("slow") == n
    assert cal.calibrator.scale("slow") >= 3.0 * (n / (n + 1))
    # The next request of that model is scheduled with the corrected estimate.
    expected = 10 * cal.calibrator.scale("slow")
    r = post_json(gw.url + "/v1/completions", completion("len=10 next", 1000, model="slow"))
    assert float(r.headers["x-ssjf-predicted-tokens"]) == pytest.approx(expected, rel=0.05)
    text = gw.metrics_with('ssjf_gateway_calibration_scale{model_name="slow"}')
    assert "ssjf_gateway_calibration_pooled_completions" in text


def test_calibration_off_leaves_estimates_alone(engine, start_gateway) -> None:
    _, up = engine
    gw = start_gateway(FakePredictor(), upstreams=[up.url], calibrate=False)
    assert gw.gw.calibration is None
    for _ in range(3):
        r = post_json(gw.url + "/v1/completions", completion("len=10 x", 30, model="slow"))
        assert float(r.headers["x-ssjf-predicted-tokens"]) == 10.0
    assert "ssjf_gateway_calibration" not in httpx.get(gw.url + "/metrics").text


def test_forced_lengths_do_not_teach(engine, start_gateway) -> None:
    _, up = engine
    gw = start_gateway(FakePredictor(), upstreams=[up.url], access_log=False)
    for extra in ({"min_tokens": 30}, {"ignore_eos": True}, {"n": 2}):
        body = completion("len=10 x", 30, model="m", **extra)
        assert post_json(gw.url + "/v1/completions", body).status_code == 200
    body = completion("len=10 x", 30, model="m")
    assert post_json(gw.url + "/v1/completions", body).status_code == 200
    gw.wait_for(lambda g: g.calibration.calibrator.completions >= 1)
    assert gw.gw.calibration.calibrator.seen("m") == 1
