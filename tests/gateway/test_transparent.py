"""A transparent proxy: headers both ways, request ids, unscheduled routes, nothing internal leaks."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx

from .fake_upstream import free_port
from .helpers import completion

JSON = {"content-type": "application/json"}


def test_request_id_is_kept_or_made_and_travels_both_ways(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.post(
        gw.url + "/v1/completions", json=completion("x"), headers={"x-request-id": "abc-123"}
    )
    assert r.headers["x-request-id"] == "abc-123"
    # The engine sees it made unique per gateway request (clients may reuse theirs).
    assert fake.headers[-1]["x-request-id"].startswith("abc-123-")
    # Missing or unsafe ids are replaced by a fresh one.
    for sent in (None, "bad id with spaces", "x" * 500):
        headers = {"x-request-id": sent} if sent else {}
        r = httpx.post(gw.url + "/v1/completions", json=completion("x"), headers=headers)
        rid = r.headers["x-request-id"]
        assert rid != sent and len(rid) == 32
        assert fake.headers[-1]["x-request-id"].startswith(rid + "-")
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
    sent = json.loads(echo["body"])
    assert sent["input"] == "hi" and isinstance(sent["priority"], int)
    assert echo["headers"]["authorization"] == "Bearer engine-key"
    assert r.headers["x-engine-route"] == "echo" and "x-request-id" in r.headers
    for method, path in (
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("GET", "/v1/models/fake"),
    ):
        r = httpx.request(method, gw.url + path, json={} if method == "POST" else None)
        assert r.status_code == 200, path
        assert r.json()["path"] == path
    assert httpx.get(gw.url + "/v1/models/x?y=1").json()["query"] == "y=1"
    assert httpx.post(gw.url + "/v1/not-a-route", json={}).status_code == 404
    # Unscheduled generation would bypass admission: not forwarded unless configured.
    assert httpx.post(gw.url + "/v1/responses", json={}).status_code == 404


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


def test_passthrough_bodies_carry_the_gateways_priority_not_the_clients(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.post(gw.url + "/v1/embeddings", json={"input": "x", "priority": -1000})
    sent = json.loads(r.json()["body"])
    # Not the client's, and not the engine's default 0 (which would outrank every
    # scheduled request, whose keys are deadlines >= 0): a request arriving now.
    assert sent["input"] == "x" and sent["priority"] > 0
    for bad in ("/v1/embeddings", "/tokenize"):
        r = httpx.post(gw.url + bad, content=b'{"input": ' * 100, headers=JSON)
        assert r.status_code == 400  # hostile JSON is refused here too


def test_passthrough_hides_error_pages_and_internal_headers(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.get(gw.url + "/v1/models/x?fake_html_error=502")
    assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"
    assert "10.0.0.5" not in r.text and "nginx" not in r.text
    for name in ("location", "via"):
        assert name not in r.headers


def test_engines_are_asked_for_plain_bytes(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    gzip = {"accept-encoding": "gzip"}
    httpx.post(gw.url + "/v1/completions", json=completion("x"), headers=gzip)
    assert fake.headers[-1]["accept-encoding"] == "identity"
    httpx.post(gw.url + "/tokenize", json={}, headers=gzip)
    assert fake.headers[-1]["accept-encoding"] == "identity"


def test_passthrough_path_is_the_clients_less_the_mount(engine):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from ssjf.gateway.app import create_app
    from ssjf.gateway.config import load_config

    from .fake_upstream import ServerThread

    _, up = engine
    host = Starlette(
        routes=[Mount("/llm", app=create_app(load_config(None, {"upstreams": [up.url]}, {})))]
    )
    server = ServerThread(host).start()
    try:
        r = httpx.get(server.url + "/llm/v1/models/a%20b?x=1")
        assert r.status_code == 200 and r.json()["path"] == "/v1/models/a b"
        assert r.json()["query"] == "x=1"
        raw = socket.create_connection(("127.0.0.1", server.port))
        # `..` as the model id would make the engine's URL another route.
        raw.sendall(b"GET /llm/v1/models/.. HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
        raw.close()
    finally:
        server.stop(force=True)


def test_a_stalled_passthrough_reader_frees_its_slot(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], max_passthrough_in_flight=1, write_timeout_s=0.5)
    body = json.dumps({"input": "x" * (7 << 20)}).encode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.server.port))
    try:
        s.sendall(
            b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        # The echo (7 MiB) fills the buffers; the client never reads: slot given back.
        gw.wait_for(lambda g: g.passthrough_slots.locked())
        gw.wait_for(lambda g: not g.passthrough_slots.locked(), timeout=30)
    finally:
        s.close()
    assert httpx.post(gw.url + "/tokenize", json={}).status_code == 200
