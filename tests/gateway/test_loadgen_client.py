"""The reliability test's load generator must never drop a connection by itself.

It tests ``tests/gateway/loadgen.py`` (a helper of ``test_reliability.py``), not
``ssjf.bench.serve``, so it lives beside that helper.

A connection its own pool closes under a request fails that request with an
httpx ``ReadError``, which the reliability test would blame on the gateway
(encode/httpcore#1110; see loadgen.py). The pool can only do that to a connection
it closes while idle, so the load generator's client must never close one.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpcore._async.connection_pool as pool_mod
import httpcore._async.http11 as http11
import httpx
import pytest

from . import loadgen
from .fake_upstream import FakeEngine, ServerThread

N = 400
#: Real seconds run this many times faster on httpcore's clock: the 5 s default
#: expiry passes in under 2 ms, between the steps of overlapping requests.
SPEEDUP = 3000.0


class _FastClock:
    """Stands in for ``time`` in httpcore's HTTP/1.1 code, running ``SPEEDUP`` times fast:
    expiries land between two steps of one request, as on a slow, loaded machine."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def monotonic(self) -> float:
        return self.t0 + (time.monotonic() - self.t0) * SPEEDUP


async def _arrivals(url: str, client: httpx.AsyncClient) -> list[Any]:
    """Open-loop arrivals overlapping the answers, as in the reliability test."""
    rng = random.Random(7)

    async def one(i: int) -> Any:
        body = {"model": "m", "prompt": f"r{i}", "max_tokens": 1}
        body["fake_token_delay"] = rng.uniform(0.0, 0.01)
        try:
            return (await client.post(url, json=body, timeout=30)).status_code
        except httpx.HTTPError as e:
            return f"{type(e).__name__} {e}"

    tasks = []
    for i in range(N):
        tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.sleep(rng.expovariate(1000.0))
    return list(await asyncio.gather(*tasks))


def _closed_while_assigned(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Spy on the pool: connections it closes that a waiting request was assigned to."""
    found: list[object] = []
    assign = pool_mod.AsyncConnectionPool._assign_requests_to_connections

    def spy(self: Any) -> Any:
        closing = assign(self)
        found.extend(c for c in closing for r in self._requests if r.connection is c)
        return closing

    monkeypatch.setattr(pool_mod.AsyncConnectionPool, "_assign_requests_to_connections", spy)
    monkeypatch.setattr(http11, "time", _FastClock())
    return found


@pytest.fixture
def plain_server() -> Any:
    server = ServerThread(FakeEngine().app(), keep_alive_s=loadgen.KEEP_ALIVE_S).start()
    yield server
    server.stop(force=True)


def test_spy_sees_the_race_with_an_expiring_pool(plain_server, monkeypatch):
    """The old load generator's pool (httpx's 5 s expiry) closes connections assigned to
    requests: the spy sees the race, so the check in the next test can fail."""
    found = _closed_while_assigned(monkeypatch)

    async def run() -> list[Any]:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with httpx.AsyncClient(limits=limits) as client:  # httpx's 5 s expiry
            return await _arrivals(plain_server.url + "/v1/completions", client)

    results = asyncio.run(run())
    assert found, "the spy never saw an assigned connection closed: it checks nothing"
    assert len(results) == N


def test_loadgen_pool_never_closes_an_assigned_connection(plain_server, monkeypatch):
    found = _closed_while_assigned(monkeypatch)

    async def run() -> list[Any]:
        async with loadgen.make_client() as client:
            return await _arrivals(plain_server.url + "/v1/completions", client)

    results = asyncio.run(run())
    assert results == [200] * N
    assert found == []
