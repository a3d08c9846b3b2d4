"""Operating the gateway: readiness, mounting, settings from the environment, logs, stalled readers."""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest

from ssjf.gateway.app import create_app
from ssjf.gateway.config import ConfigError, env_settings, load_config
from ssjf.gateway.logs import JsonFormatter

from .fake_upstream import ServerThread
from .helpers import completion


def test_ready_needs_a_reachable_upstream(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url])
    r = httpx.get(gw.url + "/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_mounted_inside_another_app(engine):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    _, up = engine
    cfg = load_config(None, {"upstreams": [up.url]}, {})
    gateway_app = create_app(cfg)
    host = Starlette(routes=[Mount("/llm", app=gateway_app)])  # its lifespan never runs
    server = ServerThread(host).start()
    try:
        r = httpx.post(server.url + "/llm/v1/completions", json=completion("x"))
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 4
        assert httpx.get(server.url + "/llm/health").json() == {"status": "ok"}
    finally:
        server.stop(force=True)


def test_settings_from_the_environment_under_flags():
    env = {
        "SSJF_GATEWAY_UPSTREAMS": '["http://e:1"]',
        "SSJF_GATEWAY_MAX_QUEUE": "7",
        "SSJF_GATEWAY_API_KEYS": '["k1", "k2"]',
        "SSJF_GATEWAY_POLICY": "fcfs",  # a bare string
        "UNRELATED": "x",
    }
    assert env_settings(env) == {
        "upstreams": ["http://e:1"],
        "max_queue": 7,
        "api_keys": ["k1", "k2"],
        "policy": "fcfs",
    }
    cfg = load_config(None, {"max_queue": 9}, env)
    assert cfg.max_queue == 9 and cfg.policy == "fcfs" and cfg.upstreams == ["http://e:1"]
    with pytest.raises(ConfigError, match="max_queue"):
        load_config(None, None, {**env, "SSJF_GATEWAY_MAX_QUEUE": "-1"})


def test_file_paths_are_relative_to_the_config_file(tmp_path):
    d = tmp_path / "etc"
    d.mkdir()
    f = d / "gw.json"
    f.write_text(
        json.dumps(
            {"upstreams": ["http://e:1"], "traffic_log": "logs/t.jsonl", "predictor": "/abs/p"}
        )
    )
    cfg = load_config(f, environ={})
    assert cfg.traffic_log == str(d / "logs" / "t.jsonl")
    assert cfg.predictor == "/abs/p"


def test_json_log_lines_carry_the_request_id(engine, start_gateway, caplog):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], access_log=True)
    with caplog.at_level(logging.INFO, logger="ssjf.gateway.access"):
        httpx.post(gw.url + "/v1/completions", json=completion("x"), headers={"x-request-id": "r7"})
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    rec = caplog.records[-1]
    line = json.loads(JsonFormatter().format(rec))
    assert (
        line["request_id"] == "r7" and line["status"] == 200 and line["logger"].endswith("access")
    )


def test_traffic_log_records_request_id_n_and_limit(engine, start_gateway, tmp_path):
    _, up = engine
    log = tmp_path / "t.jsonl"
    gw = start_gateway(upstreams=[up.url], traffic_log=str(log))
    httpx.post(
        gw.url + "/v1/completions",
        json=completion("x", max_tokens=6, n=2),
        headers={"x-request-id": "t1"},
    )
    gw.wait_for(lambda g: g.traffic.records == 1)  # written once the response is out
    gw.gw.traffic.flush()
    rec = json.loads(log.read_text().splitlines()[-1])
    assert (rec["request_id"], rec["n"], rec["max_tokens"]) == ("t1", 2, 6)
    assert len(rec["prompt_hash"]) == 64


def test_a_client_that_stops_reading_loses_its_slot(engine, start_gateway):
    _, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1, write_timeout_s=0.5)
    body = json.dumps(
        completion("x", max_tokens=2000, stream=True, fake_chunk_bytes=65536)
    ).encode()
    s = socket.create_connection(("127.0.0.1", gw.server.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    try:
        # The stream fills the socket buffers, the client never reads: the gateway gives
        # the slot back (and closes the engine's stream) instead of holding it forever.
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        gw.wait_for(lambda g: g.dispatcher.in_flight == 0, timeout=30)
        r = httpx.post(gw.url + "/v1/completions", json=completion("next"), timeout=10)
        assert r.status_code == 200
    finally:
        s.close()
    gw.metrics_with('type="client_write_timeout"')


def test_text_log_lines_keep_the_extras():
    from ssjf.gateway.logs import TextFormatter

    rec = logging.makeLogRecord({"msg": "request", "request_id": "r9", "status": 200})
    line = TextFormatter().format(rec)
    assert line.endswith("request request_id=r9 status=200")
