"""The gateway-held queue: SSJF order, 429 when full, disconnects, replica routing."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx

from .helpers import FakePredictor, completion, post_json, raw_request


def _release_order(gw, fake, tags):
    """Hold the single slot with a gated request, queue ``len=N`` requests in ``tags``
    order (each seen queued before the next, so arrival order is the list order),
    open the gate; return the order in which the engine received them."""
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(post_json, url, completion("len=1 first", 10, fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        futs = []
        for n in tags:
            futs.append(pool.submit(post_json, url, completion(f"len={n}", 100)))
            gw.wait_for(lambda g, k=len(futs): g.dispatcher.queue_len == k)
        fake.gate.set()
        assert first.result().status_code == 200
        assert all(f.result().status_code == 200 for f in futs)
    return list(fake.order)


def test_fifo_backend_releases_shortest_predicted_first(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        FakePredictor(), upstreams=[up.url], backend="fifo", max_in_flight=1, policy="ssjf"
    )  # mean-first ssjf: the default's tail budget is tested in test_tail_default.py
    order = _release_order(gw, fake, (50, 10, 40, 20, 30))
    assert order == ["len=1 first", "len=10", "len=20", "len=30", "len=40", "len=50"]
    assert fake.max_active == 1
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0 and g.dispatcher.queue_len == 0)


def test_fcfs_policy_keeps_arrival_order(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        FakePredictor(), upstreams=[up.url], backend="fifo", max_in_flight=1, policy="fcfs"
    )
    order = _release_order(gw, fake, (50, 10, 40))
    assert order == ["len=1 first", "len=50", "len=10", "len=40"]


def test_queue_full_gives_429_with_retry_after(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        upstreams=[up.url],
        backend="fifo",
        max_in_flight=1,
        max_queue=2,
        retry_after_s=3,
        retry_after_max_s=7,
    )
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(4) as pool:
        a = pool.submit(post_json, url, completion("a", 10, fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        b = pool.submit(post_json, url, completion("b"))
        c = pool.submit(post_json, url, completion("c"))
        gw.wait_for(lambda g: g.dispatcher.queue_len == 2)
        r = post_json(url, completion("d"))
        assert r.status_code == 429
        # Nothing has completed yet: no drain rate to go by, so the longest wait.
        assert r.headers["retry-after"] == "7"
        err = r.json()["error"]
        assert err["type"] == "overloaded_error" and err["code"] == "queue_full"
        assert {"message", "type", "param", "code"} <= set(err)
        fake.gate.set()
        assert [f.result().status_code for f in (a, b, c)] == [200, 200, 200]
    m = httpx.get(gw.url + "/metrics").text
    assert "ssjf_gateway_rejected_total 1.0" in m


def test_disconnect_while_queued_frees_the_place(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1, max_queue=1)
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(post_json, url, completion("a", 10, fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        sock = raw_request(
            gw.server.port, "/v1/completions", json.dumps(completion("gone")).encode()
        )
        gw.wait_for(lambda g: g.dispatcher.queue_len == 1)
        sock.close()
        # The queued request leaves the queue while "a" is still running...
        gw.wait_for(lambda g: g.dispatcher.queue_len == 0)
        assert gw.gw.dispatcher.in_flight == 1
        # ...so its place is free for another request (max_queue=1, no 429).
        b = pool.submit(post_json, url, completion("b"))
        gw.wait_for(lambda g: g.dispatcher.queue_len == 1)
        fake.gate.set()
        assert a.result().status_code == 200
        assert b.result().status_code == 200
    assert "gone" not in fake.order
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)


def test_disconnect_in_flight_stream_frees_slot_and_closes_upstream(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1)
    body = completion("long", 200, stream=True, fake_token_delay=0.02)
    with httpx.stream("POST", gw.url + "/v1/completions", json=body, timeout=10) as r:
        it = r.iter_raw()
        assert next(it).startswith(b"data: ")
    # Leaving the block closed the connection mid-stream.
    gw.wait_for(lambda g: g.dispatcher.in_flight == 0)
    deadline_ok = False
    for _ in range(300):
        if fake.aborted >= 1 and fake.active == 0:
            deadline_ok = True
            break
        httpx.get(up.url + "/v1/models")  # let time pass on the engine side
    assert deadline_ok, "the upstream stream was not closed"
    assert post_json(gw.url + "/v1/completions", completion("next")).status_code == 200


def test_disconnect_in_flight_plain_frees_slot(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], backend="fifo", max_in_flight=1)
    # Held by the engine until the end of the test: only the disconnect can free the slot.
    # Repeated: each round opens a new upstream connection, and a disconnect landing
    # while it connects must not be lost (regression: asyncio.wait_for on Python 3.11).
    body = json.dumps(completion("slow", 100, fake_gate=True)).encode()
    for _ in range(8):
        sock = raw_request(gw.server.port, "/v1/completions", body)
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        sock.close()
        gw.wait_for(lambda g: g.dispatcher.in_flight == 0)
    r = post_json(gw.url + "/v1/completions", completion("next"))
    assert r.status_code == 200
    fake.gate.set()


def test_routes_by_least_predicted_outstanding_work(start_gateway):
    from .fake_upstream import FakeEngine, ServerThread

    fakes = [FakeEngine(), FakeEngine()]
    servers = [ServerThread(f.app()).start() for f in fakes]
    try:
        gw = start_gateway(FakePredictor(), upstreams=[s.url for s in servers], backend="vllm")
        url = gw.url + "/v1/completions"
        with ThreadPoolExecutor(4) as pool:
            long = pool.submit(post_json, url, completion("len=500", 10, fake_gate=True))
            gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
            # The long request went to replica 0 (tie -> lowest index); short ones avoid it.
            r1 = post_json(url, completion("len=10"))
            r2 = post_json(url, completion("len=20", 4, fake_token_delay=0.0))
            fakes[0].gate.set()
            assert long.result().headers["x-ssjf-replica"] == "0"
        assert r1.headers["x-ssjf-replica"] == "1"
        assert r2.headers["x-ssjf-replica"] == "1"
        assert list(fakes[0].order) == ["len=500"]
    finally:
        for s in servers:
            s.stop(force=True)


def test_replica_down_is_avoided(engine, start_gateway):
    fake, up = engine
    from .fake_upstream import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    gw = start_gateway(
        upstreams=[dead, up.url], backend="fifo", max_in_flight=1, replica_cooldown_s=30
    )
    # The first pick is the dead replica (tie -> index 0): refused, so rerouted.
    r = post_json(gw.url + "/v1/completions", completion("x"))
    assert r.status_code == 200 and r.headers["x-ssjf-replica"] == "1"
    # Then the dead replica is avoided while it cools down.
    r = post_json(gw.url + "/v1/completions", completion("y"))
    assert r.status_code == 200 and r.headers["x-ssjf-replica"] == "1"
    assert list(fake.order) == ["x", "y"]
    gw.wait_for(lambda g: all(r.in_flight == 0 for r in g.router.replicas))


def test_all_replicas_down_is_503(start_gateway):
    from .fake_upstream import free_port

    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    gw = start_gateway(upstreams=dead, backend="fifo", max_in_flight=1)
    r = post_json(gw.url + "/v1/completions", completion("x"))
    assert r.status_code == 503 and r.json()["error"]["type"] == "upstream_unavailable"
    gw.wait_for(lambda g: all(r.in_flight == 0 for r in g.router.replicas))


def test_time_dependent_policy_and_guard_work_behind_the_queue(engine, start_gateway):
    fake, up = engine
    gw = start_gateway(
        FakePredictor(),
        upstreams=[up.url],
        backend="fifo",
        max_in_flight=1,
        policy="hrrn",
        max_wait_s=0.0,  # everyone is overdue at once: the guard serves by deadline (FCFS)
    )
    order = _release_order(gw, fake, (50, 10, 40))
    assert order == ["len=1 first", "len=50", "len=10", "len=40"]
    assert gw.gw.dispatcher.queue.promotions >= 1


def test_default_mode_bounds_engine_concurrency_and_ends_in_429(engine, start_gateway):
    """Without max_in_flight the engine orders by priority, and admission still holds."""
    fake, up = engine
    gw = start_gateway(upstreams=[up.url], engine_max_concurrency=2, max_queue=2)
    url = gw.url + "/v1/completions"
    with ThreadPoolExecutor(6) as pool:
        held = [pool.submit(post_json, url, completion(f"h{i}", 10, fake_gate=True)) for i in "ab"]
        gw.wait_for(lambda g: g.dispatcher.in_flight == 2)
        queued = [pool.submit(post_json, url, completion(f"q{i}")) for i in "ab"]
        gw.wait_for(lambda g: g.dispatcher.queue_len == 2)
        r = post_json(url, completion("over"))
        assert r.status_code == 429 and "retry-after" in r.headers
        fake.gate.set()
        assert [f.result().status_code for f in held + queued] == [200] * 4
    assert fake.max_active <= 2


def test_configured_policy_reaches_the_engine_priority(engine, start_gateway):
    """fcfs sends equal priorities; ssjf sends the shorter prediction the lower one."""
    fake, up = engine

    def priorities(policy: str) -> list[int]:
        gw = start_gateway(FakePredictor(), upstreams=[up.url], policy=policy)
        for n in (400, 5):
            assert post_json(gw.url + "/v1/completions", completion(f"len={n}", 1000)).is_success
        return [b["priority"] for b in list(fake.received)[-2:]]

    long_, short = priorities("ssjf")
    assert short < long_
    assert len(set(priorities("fcfs"))) == 1


def test_queued_bodies_are_bounded_in_bytes(engine, start_gateway):
    """Big bodies queue up to max_queue_bytes, then 429 (before: 40 x 8 MiB held whole)."""
    fake, up = engine
    mib = 1 << 20
    gw = start_gateway(
        upstreams=[up.url],
        backend="fifo",
        max_in_flight=1,
        max_queue_bytes=3 * mib,
        max_body_bytes=2 * mib,
    )
    url = gw.url + "/v1/completions"
    big = "x" * (mib - 200)
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(post_json, url, completion("held", 10, fake_gate=True))
        gw.wait_for(lambda g: g.dispatcher.in_flight == 1)
        queued = []
        for i in range(3):
            queued.append(pool.submit(post_json, url, completion(f"{i} {big}")))
            gw.wait_for(lambda g, k=i + 1: g.dispatcher.queue_len == k)
        r = post_json(url, completion(f"over {big}"))
        assert r.status_code == 429 and "bytes" in r.json()["error"]["message"]
        assert gw.gw.dispatcher.queued_bytes <= 3 * mib
        fake.gate.set()
        assert [f.result().status_code for f in [held, *queued]] == [200] * 4
    gw.wait_for(lambda g: g.dispatcher.queued_bytes == 0 and g.dispatcher.in_flight == 0)


def test_bodies_in_transit_are_bounded_too(engine, start_gateway):
    """Many connections uploading big bodies at once cannot take the memory first."""
    _, up = engine
    kib = 1024
    gw = start_gateway(upstreams=[up.url], max_queue_bytes=1024 * kib, max_body_bytes=1024 * kib)
    port = gw.server.port
    part = b'{"prompt": "' + b"x" * (600 * kib)
    # Each announces ~1 MiB, sends 600 KiB and stalls: the gateway holds what arrived.
    s1 = _partial_upload(port, 1000 * kib, part)
    try:
        gw.wait_for(lambda g: g.receiving.used >= 600 * kib)
        s2 = _partial_upload(port, 1000 * kib, part)
        try:
            reply = _read_response(s2)
        finally:
            s2.close()
        assert reply.startswith(b"HTTP/1.1 429"), reply[:100]
        assert b"receiving too many request bytes" in reply
    finally:
        s1.close()
    gw.wait_for(lambda g: g.receiving.used == 0)
    assert post_json(gw.url + "/v1/completions", completion("after")).status_code == 200


def _partial_upload(port: int, announced: int, part: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {announced}\r\n\r\n".encode()
        + part
    )
    return s


def _read_response(s: socket.socket) -> bytes:
    """Bytes of one response with a Content-Length, read to its end."""
    s.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body
