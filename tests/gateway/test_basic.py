"""The gateway forwards completions and chat, plain and streaming, and keeps bodies intact."""

from __future__ import annotations

import json

import httpx

from .helpers import FakePredictor


def test_completion_roundtrip_and_passthrough(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="vllm")
    body = {
        "model": "tiny",
        "prompt": "hello",
        "max_tokens": 5,
        "ignore_eos": True,
        "vllm_xargs": {"a": 1},
        "weird": [1, {"x": None}],
    }
    r = httpx.post(gw.url + "/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["choices"][0]["text"] == "xxxxx"
    assert out["usage"]["completion_tokens"] == 5
    sent = fake.received[-1]
    # Unknown fields unchanged, max_tokens never rewritten, priority added for vllm.
    assert sent["ignore_eos"] is True
    assert sent["vllm_xargs"] == {"a": 1}
    assert sent["weird"] == [1, {"x": None}]
    assert sent["max_tokens"] == 5
    assert isinstance(sent["priority"], int)
    assert {k: v for k, v in sent.items() if k != "priority"} == body
    assert float(r.headers["x-ssjf-predicted-tokens"]) == 5.0  # fallback capped by max_tokens


def test_chat_completion(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url + "/v1"], backend="fifo", max_in_flight=2)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "xxx"
    assert "priority" not in fake.received[-1]  # fifo engines get no priority field
    assert fake.received[-1] == body


def test_priority_follows_prediction(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        FakePredictor(),
        upstreams=[up.url],
        backend="vllm",
        priority_bucket_tokens=10,
        vllm_priority_header=True,
        max_wait_s=None,  # no guard: the key is the bucketed prediction
        wait_factor=None,
        calibrate=False,  # the raw prediction: answers must not rescale the next keys
    )
    prios = {}
    for n in (5, 95, 400):
        r = httpx.post(gw.url + "/v1/completions", json={"prompt": f"len={n}", "max_tokens": 1000})
        assert r.status_code == 200
        prios[n] = fake.received[-1]["priority"]
        assert fake.headers[-1]["x-vllm-priority"] == str(prios[n])
    assert prios == {5: 0, 95: 9, 400: 40}


def test_sglang_convention(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        FakePredictor(), upstreams=[up.url], backend="sglang", priority_bucket_tokens=10
    )
    # With the guard's deadlines (the default) or without, shorter is more important.
    httpx.post(gw.url + "/v1/completions", json={"prompt": "len=10", "max_tokens": 999})
    short = fake.received[-1]["priority"]
    httpx.post(gw.url + "/v1/completions", json={"prompt": "len=500", "max_tokens": 999})
    long = fake.received[-1]["priority"]
    assert short > long  # SGLang default: larger value = more important
    gw2 = start_gateway(
        FakePredictor(),
        upstreams=[up.url],
        backend="sglang",
        priority_bucket_tokens=10,
        sglang_low_priority_values_first=True,
        max_wait_s=None,
        wait_factor=None,
    )
    httpx.post(gw2.url + "/v1/completions", json={"prompt": "len=10", "max_tokens": 999})
    assert fake.received[-1]["priority"] == 1


def _raw_stream(url: str, body: dict) -> bytes:
    with httpx.stream("POST", url, json=body, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return b"".join(r.iter_raw())


def test_stream_passthrough_strips_injected_usage(engine, start_gateway, upstream_client):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="vllm", upstream_client=upstream_client)
    body = {"model": "tiny", "prompt": "p", "max_tokens": 4, "stream": True}
    via_gw = _raw_stream(gw.url + "/v1/completions", body)
    # The gateway asked the engine for usage on the client's behalf...
    assert fake.received[-1]["stream_options"] == {"include_usage": True}
    # ...and what the client got equals the engine's stream without the usage chunk.
    direct = _raw_stream(up.url + "/v1/completions", body)
    assert via_gw == direct
    assert b'"usage"' not in via_gw
    assert via_gw.endswith(b"data: [DONE]\n\n")


def test_stream_keeps_usage_when_client_asked(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1)
    body = {
        "messages": [{"role": "user", "content": "hey"}],
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    via_gw = _raw_stream(gw.url + "/v1/chat/completions", body)
    direct = _raw_stream(up.url + "/v1/chat/completions", body)
    assert via_gw == direct
    events = [e for e in via_gw.split(b"\n\n") if e]
    usage = json.loads(events[-2][len(b"data: ") :])
    assert usage["usage"]["completion_tokens"] == 3


def test_models_health_metrics(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], backend="vllm")
    assert httpx.get(gw.url + "/v1/models").json()["data"][0]["id"] == "fake"
    assert httpx.get(gw.url + "/health").json() == {"status": "ok"}
    r = httpx.get(gw.url + "/ready")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["status"] == "ready" and h["queue_length"] == 0 and h["in_flight"] == 0
    httpx.post(gw.url + "/v1/completions", json={"prompt": "p", "max_tokens": 2})
    m = gw.metrics_with('ssjf_gateway_requests_total{endpoint="completions",status="200"} 1.0')
    assert "ssjf_gateway_queue_length 0.0" in m
    assert "ssjf_gateway_actual_tokens_count 1.0" in m


def test_estimate_cap_by_max_tokens_can_be_turned_off(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], fallback_tokens=300, cap_estimate_by_max_tokens=False)
    r = httpx.post(gw.url + "/v1/completions", json={"prompt": "p", "max_tokens": 5})
    assert r.status_code == 200
    assert float(r.headers["x-ssjf-predicted-tokens"]) == 300.0  # max_tokens not read
