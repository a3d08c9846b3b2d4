"""GatewayMetrics: vLLM-compatible names, bounded labels, no internal URLs."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ssjf.gateway.metrics import GatewayMetrics, LabelBudget


class _Replica:
    def __init__(self, url: str, index: int) -> None:
        self.url, self.index = url, index
        self.in_flight, self.outstanding = 2, 40.0


def _scrape(m: GatewayMetrics) -> dict[str, list[Any]]:
    """Sample lists by sample name from a render() of ``m``."""
    body, ctype = m.render()
    assert ctype.startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def _request(m: GatewayMetrics, **kw: Any) -> None:
    args: dict[str, Any] = dict(
        endpoint="/v1/completions",
        status=200,
        model="tiny",
        tenant=None,
        error_type=None,
        queue_wait=0.01,
        ttft=0.2,
        e2e=1.5,
        prompt_tokens=10,
        generation_tokens=5,
        predicted=7.0,
        source="predictor",
    )
    args.update(kw)
    m.observe_request(**args)


def test_vllm_names_with_model_label():
    m = GatewayMetrics()
    _request(m, finished_reason="stop")
    m.observe_itl("tiny", 0.02)
    s = _scrape(m)
    for name in (
        "ssjf:e2e_request_latency_seconds_count",
        "ssjf:time_to_first_token_seconds_count",
        "ssjf:inter_token_latency_seconds_count",
        "ssjf:request_queue_time_seconds_count",
    ):
        assert _value(s, name, model_name="tiny") == 1, name
    assert _value(s, "ssjf:prompt_tokens_total", model_name="tiny") == 10
    assert _value(s, "ssjf:generation_tokens_total", model_name="tiny") == 5
    assert _value(s, "ssjf:request_success_total", model_name="tiny", finished_reason="stop") == 1
    assert "ssjf:num_requests_running" in s and "ssjf:num_requests_waiting" in s
    assert _value(s, "ssjf_gateway_requests_total", endpoint="/v1/completions", status="200") == 1
    assert _value(s, "ssjf_gateway_requests_by_tenant_total", tenant="default") == 1
    assert _value(s, "ssjf_gateway_estimates_total", source="predictor") == 1
    assert _value(s, "ssjf_gateway_prediction_abs_error_tokens_sum") == 2.0


def test_token_counters_add_up():
    m = GatewayMetrics()
    for i in range(1, 11):
        _request(m, prompt_tokens=i, generation_tokens=2 * i)
    _request(m, model="other-model", prompt_tokens=100, generation_tokens=None, status=500)
    s = _scrape(m)
    assert _value(s, "ssjf:prompt_tokens_total", model_name="tiny") == 55
    assert _value(s, "ssjf:generation_tokens_total", model_name="tiny") == 110
    assert _value(s, "ssjf:prompt_tokens_total") == 155
    assert _value(s, "ssjf:generation_tokens_total") == 110
    assert _value(s, "ssjf_gateway_actual_tokens_count") == 10
    # Only 2xx answers are successes (and only they have an end-to-end latency).
    assert _value(s, "ssjf:request_success_total") == 10
    assert _value(s, "ssjf:e2e_request_latency_seconds_count") == 10


def test_itl_observation_counts():
    m = GatewayMetrics()
    for _ in range(100):
        m.observe_itl("tiny", 0.03)
    for _ in range(7):
        m.observe_itl(None, 0.5)
    s = _scrape(m)
    assert _value(s, "ssjf:inter_token_latency_seconds_count", model_name="tiny") == 100
    assert _value(s, "ssjf:inter_token_latency_seconds_sum", model_name="tiny") == pytest.approx(3)
    assert _value(s, "ssjf:inter_token_latency_seconds_count", model_name="unknown") == 7
    assert _value(s, "ssjf:inter_token_latency_seconds_bucket", model_name="tiny", le="0.025") == 0
    assert _value(s, "ssjf:inter_token_latency_seconds_bucket", model_name="tiny", le="0.05") == 100


def test_model_labels_are_bounded():
    m = GatewayMetrics(max_model_labels=32)
    for i in range(1000):
        _request(m, model=f"client-model-{i}", tenant=f"tenant-{i}")
        m.observe_itl(f"stream-model-{i}", 0.01)
    s = _scrape(m)
    models = {x.labels["model_name"] for x in s["ssjf:e2e_request_latency_seconds_count"]}
    models |= {x.labels["model_name"] for x in s["ssjf:inter_token_latency_seconds_count"]}
    # "unknown" is pre-created for requests without a model; it is not a client string.
    models.discard("unknown")
    assert len(models) <= 32 + 1 and "other" in models
    tenants = {x.labels["tenant"] for x in s["ssjf_gateway_requests_by_tenant_total"]}
    assert len(tenants) <= 32 + 1 and "other" in tenants
    assert _value(s, "ssjf:e2e_request_latency_seconds_count") == 1000


def test_label_budget_cleans_strings():
    b = LabelBudget(3)
    assert b(None) == "unknown"
    assert b("x" * 10_000) == "x" * 64
    assert b("bad\nname\ud800") == "bad?name?"
    assert b("") == "unknown"
    assert b("fourth") == "other" and b("x" * 64 + "y") == "x" * 64
    assert len(b) == 3
    # A scrape never fails on what clients sent.
    m = GatewayMetrics(max_model_labels=4)
    _request(m, model='q"uo\\te\ud800\x00', tenant="\udfff")
    assert _scrape(m)


def test_no_upstream_url_in_output():
    m = GatewayMetrics()
    reps = [_Replica("http://10.1.2.3:8001", 0), _Replica("http://internal-host:9000/v1", 1)]
    m.bind_state(lambda: 3, lambda: 4, reps, lambda: 5)
    _request(m)
    body = m.render()[0].decode()
    assert "10.1.2.3" not in body and "internal-host" not in body and "http" not in body
    s = _scrape(m)
    assert {x.labels["replica"] for x in s["ssjf_gateway_in_flight"]} == {"0", "1"}
    assert _value(s, "ssjf_gateway_outstanding_tokens", replica="1") == 40.0
    assert _value(s, "ssjf:num_requests_waiting") == 3
    assert _value(s, "ssjf:num_requests_running") == 4
    assert _value(s, "ssjf_gateway_promotions_total") == 5


def test_old_bind_state_call_still_works():
    m = GatewayMetrics()
    m.bind_state(lambda: 1, [_Replica("http://h:1", 0), _Replica("http://h:2", 1)])
    s = _scrape(m)
    assert _value(s, "ssjf:num_requests_running") == 4  # summed over replicas
    assert _value(s, "ssjf_gateway_queue_length") == 1
    assert _value(s, "ssjf_gateway_promotions_total") == 0


def test_errors_rejections_disconnects():
    m = GatewayMetrics()
    _request(m, status=429, error_type="queue_full", e2e=None, generation_tokens=None, source=None)
    m.observe_disconnect("queued")
    m.observe_predict_batch(0.004)
    s = _scrape(m)
    assert _value(s, "ssjf_gateway_rejected_total") == 1
    assert _value(s, "ssjf_gateway_errors_total", type="queue_full") == 1
    assert _value(s, "ssjf_gateway_client_disconnects_total", stage="queued") == 1
    assert _value(s, "ssjf_gateway_predict_batch_seconds_count") == 1
    assert _value(s, "ssjf:request_success_total") == 0
