"""Overload: at 2x capacity every request gets a full answer or a 429, and nothing leaks.

The fake engine and the load generator run as separate processes so the
gateway under test (in this process, for its state and memory) competes with
them only as the OS schedules, as in a real deployment.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ssjf.gateway.dispatcher import Ticket
from ssjf.gateway.proxy import ProxiedResponse
from ssjf.request import Request

from .fake_upstream import free_port
from .loadgen import KEEP_ALIVE_S

HERE = Path(__file__).parent
SLOTS = 4
TOKENS = 5
TOKEN_DELAY = 0.02  # one request holds a slot ~0.1 s -> capacity ~40 requests/s
CAPACITY_RPS = SLOTS / (TOKENS * TOKEN_DELAY)


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _live(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _load(url: str, n: int, rate: float, seed: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            url,
            str(n),
            str(rate),
            str(seed),
            str(TOKENS),
            str(TOKEN_DELAY),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture
def engine_process():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/v1/models", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("fake engine process did not start") from None
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.slow
def test_twice_capacity_every_request_answered_or_429(engine_process, start_gateway, tmp_path):
    gw = start_gateway(
        upstreams=[engine_process],
        backend="fifo",
        max_in_flight=SLOTS,
        max_queue=16,
        traffic_log=str(tmp_path / "traffic.jsonl"),
        # Idle connections outlive the run: the load generator's pool must never see
        # one closed under it (see loadgen.py), so any dropped connection is the gateway's.
        keep_alive_s=KEEP_ALIVE_S,
    )
    url = gw.url + "/v1/completions"
    warm = _load(url, 200, 2 * CAPACITY_RPS, seed=1)
    assert set(warm["counts"]) <= {"ok", "429", "abandoned"}, warm
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0 and g.dispatcher.queue_len == 0)
    gc.collect()
    rss0 = _rss_mb()

    n = 2000
    res = _load(url, n, 2 * CAPACITY_RPS, seed=2)
    counts = res["counts"]
    print(f"\nreliability at 2x capacity: {res}")
    assert sum(counts.values()) == n
    # None lost, none hung, none malformed: a full answer, a 429, or the client left.
    assert set(counts) <= {"ok", "429", "abandoned"}, counts
    assert res["offered_rps"] > 1.5 * CAPACITY_RPS, res  # really overloaded
    assert counts.get("429", 0) > n // 10, counts
    assert counts.get("ok", 0) > n // 4, counts

    # Back to idle: nothing queued or in flight, no per-request state left behind.
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0 and g.dispatcher.queue_len == 0)
    d = gw.gw.dispatcher
    assert d.tickets_waiting == 0 and len(d.queue) == 0 and d.queued_bytes == 0
    assert all(r.outstanding == 0 for r in gw.gw.router.replicas)
    # One record per request that reached the gateway (an abandoned client may have
    # left before its request was even read).
    left = warm["counts"].get("abandoned", 0) + counts.get("abandoned", 0)
    # A request's record is written after its response is sent: wait for the last ones.
    gw.wait_for(lambda g: g.traffic.records >= 200 + n - left)
    records = gw.gw.traffic.records
    assert 200 + n - left <= records <= 200 + n, (records, left)
    gc.collect()
    assert _live(Ticket) == 0 and _live(ProxiedResponse) == 0
    assert _live(Request) <= 2
    growth = _rss_mb() - rss0
    assert growth < 40, f"RSS grew {growth:.1f} MB over {n} requests"
    gw.gw.traffic.flush()
    statuses = {json.loads(x)["status"] for x in gw.gw.traffic.path.read_text().splitlines()}
    assert statuses <= {200, 429, 499}, statuses
