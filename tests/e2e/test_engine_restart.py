"""Killing the engine mid-stream, then bringing it back.

The test kills the session's engine; its fixture leaves the engine serving again
on the same URL whatever happens, so the tests around it run in any order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Engine
from .helpers import MODEL, completion

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]


@pytest.fixture
def killable_engine(engine: Engine) -> Iterator[Engine]:
    """The session engine, for a test that may kill it: serving again afterwards."""
    server = engine.server
    if server is None:
        pytest.skip("SSJF_TEST_ENGINE_URL engine: this test must own the engine process")
    yield engine
    if server.proc is None or server.proc.poll() is not None or not server.healthy():
        server.stop(grace_s=5)
        server.start()  # same port: the session's URL stays valid


def test_engine_killed_mid_stream_then_gateway_serves_again(
    killable_engine: Engine, start_gateway: Any
) -> None:
    engine = killable_engine
    assert engine.server is not None
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
