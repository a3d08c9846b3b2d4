"""Killing the engine mid-stream, then bringing it back (runs last: it restarts the engine)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import Engine
from .helpers import MODEL, completion

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]


def test_engine_killed_mid_stream_then_gateway_serves_again(
    engine: Engine, start_gateway: Any
) -> None:
    if engine.server is None:
        pytest.skip("SSJF_TEST_ENGINE_URL engine: this test must own the engine process")
    gw = start_gateway()
    body = {
        "model": MODEL,
        "prompt": "A very long story:",
        "max_tokens": 8000,
        "ignore_eos": True,
        "stream": True,
    }
    events: list[str] = []
    with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            events.append(line[5:].strip())
            if len(events) == 5:
                engine.server.kill()
    # The client got the start of the stream, then an OpenAI-style error event, no [DONE].
    assert '"error"' in events[-1], events[-3:]
    assert "[DONE]" not in events
    # While the engine is down, requests fail fast with an upstream error status.
    r = httpx.post(
        f"{gw.url}/v1/completions",
        json={"model": MODEL, "prompt": "x", "max_tokens": 3},
        timeout=30,
    )
    assert r.status_code in (502, 503, 504)
    assert "error" in r.json()
    # Back on the same port: the same gateway serves again.
    engine.server.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            data = completion(gw.url, "again", 4)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert data["usage"]["completion_tokens"] == 4
