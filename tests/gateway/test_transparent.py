"""A transparent proxy: headers both ways, request ids, unscheduled routes, nothing internal leaks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from .fake_upstream import free_port
from .helpers import completion


def test_request_id_is_kept_or_made_and_travels_both_ways(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.post(
        gw.url + "/v1/completions", json=completion("x"), headers={"x-request-id": "abc-123"}
    )
    assert r.headers["x-request-id"] == "abc-123"
    assert fake.headers[-1]["x-request-id"] == "abc-123"
    # Missing or unsafe ids are replaced by a fresh one.
    for sent in (None, "bad id with spaces", "x" * 500):
        headers = {"x-request-id": sent} if sent else {}
        r = httpx.post(gw.url + "/v1/completions", json=completion("x"), headers=headers)
        rid = r.headers["x-request-id"]
        assert rid != sent and len(rid) == 32
        assert fake.headers[-1]["x-request-id"] == rid
    # Errors carry it too.
    r = httpx.post(gw.url + "/v1/completions", content=b"{bad", headers={"x-request-id": "e1"})
    assert r.status_code == 400 and r.headers["x-request-id"] == "e1"


def test_end_to_end_headers_go_up_hop_by_hop_and_gateway_ones_do_not(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    sent = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "openai-organization": "org-1",
        "x-custom": "kept",
        "x-vllm-priority": "-5",
        "x-ssjf-anything": "gateway-only",
        "proxy-authorization": "Basic secret",
        "te": "trailers",
    }
    r = httpx.post(gw.url + "/v1/completions", json=completion("x"), headers=sent)
    assert r.status_code == 200
    got = fake.headers[-1]
    for name in ("traceparent", "openai-organization", "x-custom"):
        assert got[name] == sent[name]
    for name in ("x-vllm-priority", "x-ssjf-anything", "proxy-authorization", "te"):
        assert name not in got or got[name] != sent[name], name


def test_engine_response_headers_come_back(engine, start_gateway, upstream_client):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], upstream_client=upstream_client)
    extra = {"x-ratelimit-remaining-requests": "7", "openai-processing-ms": "12"}
    r = httpx.post(gw.url + "/v1/completions", json=completion("x", fake_headers=extra))
    for k, v in extra.items():
        assert r.headers[k] == v
    # ... on errors (Retry-After from an overloaded engine) and streams too.
    r = httpx.post(
        gw.url + "/v1/completions",
        json=completion("x", fake_status=429, fake_headers={"retry-after": "9"}),
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "9"
    with httpx.stream(
        "POST", gw.url + "/v1/completions", json=completion("x", stream=True, fake_headers=extra)
    ) as s:
        assert s.headers["x-ratelimit-remaining-requests"] == "7"
        s.read()


def test_unscheduled_routes_pass_through_with_their_auth(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    auth = {"authorization": "Bearer engine-key"}
    r = httpx.post(gw.url + "/v1/embeddings", json={"input": "hi"}, headers=auth)
    assert r.status_code == 200
    echo = r.json()
    assert echo["method"] == "POST" and echo["path"] == "/v1/embeddings"
    assert echo["body"] == '{"input":"hi"}'
    assert echo["headers"]["authorization"] == "Bearer engine-key"
    assert r.headers["x-engine-route"] == "echo" and "x-request-id" in r.headers
    for method, path in (
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("GET", "/v1/models/fake"),
        ("POST", "/v1/responses"),
    ):
        r = httpx.request(method, gw.url + path, json={} if method == "POST" else None)
        assert r.status_code == 200, path
        assert r.json()["path"] == path
    assert httpx.get(gw.url + "/v1/models/x?y=1").json()["query"] == "y=1"
    assert httpx.post(gw.url + "/v1/not-a-route", json={}).status_code == 404


def test_passthrough_is_bounded(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], max_passthrough_in_flight=1)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(httpx.post, gw.url + "/tokenize?fake_gate=1", json={}, timeout=10)
        gw.wait_for(lambda g: g.passthrough_slots.locked())
        r = httpx.post(gw.url + "/tokenize", json={})
        assert r.status_code == 429 and r.json()["error"]["code"] == "passthrough_full"
        fake.gate.set()
        assert held.result().status_code == 200
    gw.wait_for(lambda g: not g.passthrough_slots.locked())  # released after the answer
    assert httpx.post(gw.url + "/tokenize", json={}).status_code == 200


def test_no_upstream_address_in_client_errors_or_health(start_gateway):
    port = free_port()  # nobody listens there
    gw = start_gateway(upstreams=[f"http://127.0.0.1:{port}"], connect_timeout_s=1)
    r = httpx.post(gw.url + "/v1/completions", json=completion("x"))
    assert r.status_code == 503
    assert str(port) not in r.text and "127.0.0.1" not in r.text
    assert r.json()["error"]["type"] == "upstream_unavailable"
    for path in ("/health", "/ready", "/metrics", "/v1/models"):
        body = httpx.get(gw.url + path).text
        assert str(port) not in body and "127.0.0.1" not in body, path
    assert httpx.get(gw.url + "/ready").status_code == 503


def test_upstream_error_pages_do_not_reach_the_client(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.post(gw.url + "/v1/completions", json=completion("x", fake_html_error=502))
    assert r.status_code == 502
    err = r.json()["error"]
    assert "sk-LEAK" not in r.text and "/srv/secret" not in r.text
    assert err["type"] == "upstream_error" and r.headers["x-request-id"] in err["message"]


def test_internal_errors_say_nothing_internal(engine, start_gateway, monkeypatch):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])

    def broken(*args, **kwargs):
        raise RuntimeError("secret at /srv/internal/path")

    monkeypatch.setattr(gw.gw.backend, "prepare", broken)
    r = httpx.post(gw.url + "/v1/completions", json=completion("x"))
    assert r.status_code == 500
    assert "secret" not in r.text and "RuntimeError" not in r.text
    assert r.json()["error"]["type"] == "internal_error"
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)
