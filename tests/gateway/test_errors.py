"""Error mapping: OpenAI-style bodies, 400/404/413, upstream failures, mid-stream death."""

from __future__ import annotations

import json

import httpx
import pytest

from .fake_upstream import FakeEngine, ServerThread, free_port
from .helpers import completion, post_json


def _error(r: httpx.Response) -> dict:
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


def test_malformed_json_is_400(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url])
    for raw in (b"{not json", b"[1, 2]", b"", b'{"prompt": 3}', b'{"prompt": "x", "stream": 1}'):
        r = httpx.post(
            gw.url + "/v1/completions", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, raw
        assert _error(r)["type"] == "invalid_request_error"
    r = post_json(gw.url + "/v1/chat/completions", {"messages": []})
    assert r.status_code == 400 and _error(r)["param"] == "messages"
    r = post_json(gw.url + "/v1/completions", completion("x", max_tokens=0))
    assert r.status_code == 400 and _error(r)["param"] == "max_tokens"
    assert len(fake.received) == 0  # nothing bad reached the engine


def test_unknown_route_is_404_openai_style(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.post(gw.url + "/v1/nope", json={})
    assert r.status_code == 404 and _error(r)["type"] == "not_found_error"
    r = httpx.get(gw.url + "/v1/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_oversized_body_is_413(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], max_body_bytes=200)
    r = post_json(gw.url + "/v1/completions", completion("x" * 500))
    assert r.status_code == 413 and _error(r)["code"] == "request_too_large"

    # Without a Content-Length (chunked upload) the limit holds while reading.
    def chunks():
        yield b'{"prompt": "'
        for _ in range(50):
            yield b"x" * 10
        yield b'"}'

    r = httpx.post(gw.url + "/v1/completions", content=chunks())
    assert r.status_code == 413
    assert post_json(gw.url + "/v1/completions", completion("ok")).status_code == 200
    assert list(fake.order) == ["ok"]


def test_upstream_refused_is_503(start_gateway):
    gw = start_gateway(
        upstreams=[f"http://127.0.0.1:{free_port()}"], backend="fifo", max_in_flight=2
    )
    r = post_json(gw.url + "/v1/completions", completion("x"))
    assert r.status_code == 503 and _error(r)["type"] == "upstream_unavailable"
    r = httpx.post(gw.url + "/v1/completions", json=completion("x", stream=True))
    assert r.status_code == 503
    assert httpx.get(gw.url + "/v1/models").status_code == 503
    assert gw.gw.dispatcher.in_flight == 0


def test_upstream_timeout_is_504(engine, start_gateway, upstream_client):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], read_timeout_s=0.3, upstream_client=upstream_client)
    r = post_json(gw.url + "/v1/completions", completion("x", 20, fake_token_delay=0.1))
    assert r.status_code == 504 and _error(r)["type"] == "upstream_timeout"
    # A stream that stalls mid-way ends with an error event.
    with httpx.stream(
        "POST",
        gw.url + "/v1/completions",
        json=completion("y", 3, stream=True, fake_token_delay=1.0),
    ) as s:
        assert s.status_code == 200
        data = b"".join(s.iter_raw())
    event = json.loads(data.strip().split(b"\n\n")[-1][len(b"data: ") :])
    assert event["error"]["type"] == "upstream_timeout"
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)


def test_upstream_http_errors_pass_through(engine, start_gateway, upstream_client):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], upstream_client=upstream_client)
    for status in (400, 500, 503):
        r = post_json(gw.url + "/v1/completions", completion("x", fake_status=status))
        assert r.status_code == status
        assert _error(r)["message"] == "fake failure"
    r = httpx.post(gw.url + "/v1/completions", json=completion("x", stream=True, fake_status=400))
    assert r.status_code == 400 and _error(r)["type"] == "fake"


@pytest.mark.parametrize("endpoint", ["/v1/completions", "/v1/chat/completions"])
def test_mid_stream_death_gives_error_event(engine, start_gateway, endpoint, upstream_client):
    _, up = engine
    gw = start_gateway(
        upstreams=[up.url], backend="fifo", max_in_flight=1, upstream_client=upstream_client
    )
    body = (
        completion("x", 10, stream=True, fake_die_after=3)
        if "chat" not in endpoint
        else {
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10,
            "stream": True,
            "fake_die_after": 3,
        }
    )
    with httpx.stream("POST", gw.url + endpoint, json=body) as s:
        assert s.status_code == 200
        data = b"".join(s.iter_raw())
    events = [e for e in data.split(b"\n\n") if e]
    assert len(events) == 4  # three tokens, then the error
    err = json.loads(events[-1][len(b"data: ") :])["error"]
    assert err["type"] == "upstream_error" and set(err) == {"message", "type", "param", "code"}
    assert b"[DONE]" not in data
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)
    assert post_json(gw.url + endpoint, {**body, "stream": False}).status_code == 200


def test_engine_killed_mid_stream_then_back(start_gateway):
    fake = FakeEngine()
    port = free_port()
    server = ServerThread(fake.app(), port=port).start()
    gw = start_gateway(
        upstreams=[server.url], backend="fifo", max_in_flight=2, replica_cooldown_s=0
    )
    try:
        body = completion("long", 500, stream=True, fake_token_delay=0.01)
        with httpx.stream("POST", gw.url + "/v1/completions", json=body, timeout=20) as s:
            it = s.iter_raw()
            assert next(it).startswith(b"data: ")
            server.stop(force=True)  # the engine goes away mid-stream
            rest = b"".join(it)
        err = json.loads(rest.strip().split(b"\n\n")[-1][len(b"data: ") :])["error"]
        assert err["type"] in {"upstream_error", "upstream_unavailable"}
        r = post_json(gw.url + "/v1/completions", completion("while down"))
        assert r.status_code == 503
        server = ServerThread(FakeEngine().app(), port=port).start()  # back again
        r = post_json(gw.url + "/v1/completions", completion("after"))
        assert r.status_code == 200 and r.json()["choices"][0]["text"] == "xxxx"
        gw.wait_for(lambda g: g.dispatcher.in_flight == 0 and g.dispatcher.queue_len == 0)
    finally:
        server.stop(force=True)


def test_internal_error_still_answers(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1)

    def broken(*args, **kwargs):
        raise KeyError("bug")

    gw.gw.backend.prepare = broken  # type: ignore[method-assign]
    r = post_json(gw.url + "/v1/completions", completion("x"))
    assert r.status_code == 500 and _error(r)["type"] == "internal_error"
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)
