"""Online retraining in the gateway: configuration, feeding rules, and a swap end to end."""

from __future__ import annotations

import math
from typing import Any

import pytest

pytest.importorskip("sklearn")

from prometheus_client.parser import text_string_to_metric_families

from ssjf.estimate import LengthEstimate
from ssjf.gateway.config import ConfigError, load_config
from ssjf.gateway.core import Gateway
from ssjf.gateway.dispatcher import Ticket
from ssjf.gateway.schemas import ParsedRequest
from ssjf.predict.base import Predictor
from ssjf.predict.baselines import InputLengthPredictor
from ssjf.request import Request
from tests.predict.retrain_factories import base_data, traffic

from .helpers import FakePredictor, completion, post_json


def _config(**settings: Any) -> Any:
    return load_config(None, environ={}, settings={"upstreams": ["http://127.0.0.1:9"], **settings})


def _predictor() -> Predictor:
    base = base_data()  # short prompts -> long answers: the opposite of the traffic
    return InputLengthPredictor().fit(base.prompts, base.lengths, base.models)


def _samples(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


# -- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"retrain_holdout": 1}, "retrain_holdout"),
        ({"retrain_every": 0}, "retrain_every"),
        ({"retrain_max_records": 100}, "max_records"),  # below min_records and holdout
        ({"retrain_min_gain": -0.1}, "retrain_min_gain"),
        ({"retrain_base_data": "alpaca_eval"}, "retrain_base_data"),  # a list, not a string
    ],
)
def test_bad_retrain_settings_are_refused(settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _config(retrain=True, **settings)


def test_retrain_needs_a_predictor_of_a_family(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="needs a predictor"):
        Gateway(_config(retrain=True))
    with pytest.raises(ConfigError, match="FakePredictor"):
        Gateway(_config(retrain=True), predictor=FakePredictor())
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match=r"nope\.jsonl"):
        Gateway(_config(retrain=True, retrain_base_data=[missing]), predictor=_predictor())
    off = Gateway(_config(), predictor=_predictor())
    assert off.retraining is None
    assert "retrain" not in off.metrics.render()[0].decode()


# -- what teaches it -----------------------------------------------------------------------
def _parsed(**kw: Any) -> ParsedRequest:
    args: dict[str, Any] = dict(
        body={}, prompt="tldr x", prompt_tokens=2, model="m", max_tokens=100, stream=False,
        client_wants_usage=False,
    )  # fmt: skip
    args.update(kw)
    return ParsedRequest(**args)


def test_only_natural_single_successful_completions_teach() -> None:
    gw = Gateway(_config(retrain=True, retrain_min_records=1000), predictor=_predictor())
    rt = gw.retraining
    assert rt is not None
    ticket = Ticket(Request(id=1, arrival=0.0, prompt_tokens=2, estimate=LengthEstimate(40.0)))

    def learn(parsed: ParsedRequest, source: str = "predictor", **kw: Any) -> bool:
        args: dict[str, Any] = {"status": 200, "actual": 30, "length_finish": False, **kw}
        return rt.learn(parsed, ticket, source, **args)

    assert not learn(_parsed(), status=500)
    assert not learn(_parsed(), actual=None)  # no usage read
    assert not learn(_parsed(n=2))  # one usage sum for several answers
    assert not learn(_parsed(min_output=30))  # forced by the client
    assert rt.retrainer.completions == 0
    assert learn(_parsed())
    assert learn(_parsed(), length_finish=True)  # censored: trains, never in the drift
    assert learn(_parsed(), actual=100)  # reached max_tokens: censored too
    assert learn(_parsed(), source="timeout")  # a fallback estimate: no point to judge
    assert rt.retrainer.completions == 4 and list(rt.recent) == [(40.0, 30)]
    assert gw.runner is not None
    gw.runner.close()
    rt.background.close()


# -- end to end ----------------------------------------------------------------------------
def test_served_traffic_swaps_in_a_retrained_predictor(engine: Any, start_gateway: Any) -> None:
    _, up = engine
    serving = _predictor()
    gw = start_gateway(
        serving, upstreams=[up.url], retrain=True, retrain_min_records=40,
        retrain_holdout=10, retrain_every=10_000,
    )  # fmt: skip
    rt = gw.gw.retraining
    assert rt is not None

    def send(stream: list[Any]) -> None:
        for c in stream:
            body = completion(c.prompt, 4096, model=c.model, fake_length=c.length)
            assert post_json(gw.url + "/v1/completions", body).status_code == 200

    send(traffic(40))
    gw.wait_for(lambda g: g.retraining.outcomes["swapped"] == 1)
    new = rt.retrainer.predictor
    assert new is not serving and gw.gw.runner.predictor is new and rt.retrainer.version == 1
    [event] = rt.retrainer.events
    assert event.candidate_tau > event.serving_tau and event.holdout == 10
    assert gw.gw.calibration.calibrator.completions == 0  # its ratios were the old predictor's
    m = _samples(gw.metrics_with("ssjf_gateway_retrain_events_total"))
    assert m["ssjf_gateway_retrain_events_total{outcome=swapped}"] == 1.0
    assert m["ssjf_gateway_retrain_events_total{outcome=kept}"] == 0.0
    assert m["ssjf_gateway_predictor_version"] == 1.0
    assert m["ssjf_gateway_retrain_holdout_tau{predictor=candidate}"] == event.candidate_tau
    assert m["ssjf_gateway_retrain_completions"] == 40.0
    # The drift window held the old predictor's points (it ordered them backwards): the
    # swap empties it, so the gauge has no pairs until the new predictor's come in.
    assert math.isnan(m["ssjf_gateway_prediction_tau_recent"])
    assert m["ssjf_gateway_prediction_log2_ratio_count"] == 40.0

    # New requests are scheduled by the new predictor, and the drift gauge recovers.
    fresh = traffic(10, seed=7, start=10_000)
    r = post_json(gw.url + "/v1/completions", completion(fresh[0].prompt, 4096, model="m-long"))
    point = float(new.predict_points([fresh[0].prompt], ["m-long"])[0])
    assert float(r.headers["x-ssjf-predicted-tokens"]) == pytest.approx(point, abs=0.1)
    send(fresh)
    gw.wait_for(lambda g: g.retraining.retrainer.completions == 51)
    drift = _samples(gw.metrics_with("ssjf_gateway_prediction_tau_recent"))
    assert math.isfinite(drift["ssjf_gateway_prediction_tau_recent"])
    assert drift["ssjf_gateway_prediction_tau_recent"] > 0.5
    assert drift["ssjf_gateway_prediction_log2_ratio_count"] == 50.0  # the cut one left out
