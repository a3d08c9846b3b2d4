"""Dispatcher invariants (no HTTP): slots never overfilled, work conserving, nothing leaks."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate
from ssjf.gateway.dispatcher import Dispatcher, Ticket
from ssjf.gateway.errors import GatewayError
from ssjf.gateway.router import Router
from ssjf.policies import make_policy
from ssjf.queue import StarvationGuard
from ssjf.request import Request


def _dispatcher(replicas: int, slots: int | None, max_queue: int) -> Dispatcher:
    router = Router([f"http://r{i}" for i in range(replicas)], slots, cooldown_s=1.0)
    return Dispatcher(make_policy("ssjf"), StarvationGuard(max_wait_s=30), router, max_queue, 1)


def _req(i: int, tokens: float, tenant: str | None = None) -> Request:
    # The dispatcher's clock is time.monotonic(), so arrivals use it too.
    return Request(
        id=i,
        arrival=time.monotonic(),
        prompt_tokens=1,
        estimate=LengthEstimate(point=tokens),
        tenant=tenant,
    )


ops = st.lists(
    st.tuples(st.sampled_from(["submit", "finish", "cancel", "reroute"]), st.integers(1, 1000)),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(
    ops=ops,
    replicas=st.integers(1, 3),
    slots=st.integers(1, 3),
    max_queue=st.integers(0, 5),
)
def test_invariants_under_random_traffic(ops, replicas, slots, max_queue):
    async def run() -> None:
        d = _dispatcher(replicas, slots, max_queue)
        live: list[Ticket] = []
        for i, (op, x) in enumerate(ops):
            if op == "submit":
                try:
                    live.append(d.submit(_req(i, float(x))))
                except GatewayError as e:
                    assert e.status == 429
                    assert len(d.queue) == max_queue
            elif op == "reroute" and live:
                t = live[x % len(live)]
                if t.replica is not None:
                    d.router.mark_down(t.replica)  # the replica refused the connection
                    moved = d.reroute(t)
                    assert t.replica is not None
                    assert not moved or t.replica.down_until == 0.0
            elif live:
                t = live.pop(x % len(live))
                running = t.replica is not None
                d.release(t)
                if op == "cancel" and not running:
                    assert t.future is not None and t.future.cancelled()
            for r in d.router.replicas:
                assert 0 <= r.in_flight <= slots
                assert r.outstanding >= -1e-6
            assert len(d.queue) <= max_queue
            # Work conserving: nobody waits while a slot is free.
            assert not (len(d.queue) and d.router.has_slot())
            running = [t for t in live if t.replica is not None]
            assert sum(r.in_flight for r in d.router.replicas) == len(running)
        for t in live:
            d.release(t)
        assert d.in_flight == 0 and len(d.queue) == 0 and d.tickets_waiting == 0
        assert d.queued_bytes == 0 and not d.queue.tenants()

    asyncio.run(run())


def test_released_slot_goes_to_shortest_waiting():
    async def run() -> None:
        d = _dispatcher(1, 1, 10)
        first = d.submit(_req(0, 5))
        waiting = [d.submit(_req(i, tok)) for i, tok in enumerate([300, 20, 100], start=1)]
        assert first.replica is not None and all(t.replica is None for t in waiting)
        d.release(first)
        assert [t.replica is not None for t in waiting] == [False, True, False]
        d.release(waiting[1])
        assert waiting[2].replica is not None
        await asyncio.sleep(0)

    asyncio.run(run())


def test_cancelled_waiter_releases_its_slot():
    async def run() -> None:
        d = _dispatcher(1, 1, 10)
        first = d.submit(_req(0, 5))
        second = d.submit(_req(1, 5))
        waiter = asyncio.ensure_future(d.wait(second))
        await asyncio.sleep(0)
        d.release(first)  # grants the slot to `second`...
        waiter.cancel()  # ...whose client vanished before it could run
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert d.in_flight == 0 and len(d.queue) == 0

    asyncio.run(run())


def test_progress_lowers_outstanding_work():
    async def run() -> None:
        d = _dispatcher(1, None, 0)
        t = d.submit(_req(0, 50))
        rep = t.replica
        assert rep is not None and rep.outstanding == 50
        t.progress(20)
        assert rep.outstanding == 30
        t.progress(100)
        assert rep.outstanding == 1  # never below one token while running
        d.release(t)
        assert rep.outstanding == 0 and rep.in_flight == 0

    asyncio.run(run())


def test_retry_after_follows_the_drain_rate():
    async def run() -> None:
        router = Router(["http://r0"], 1, cooldown_s=1.0)
        d = Dispatcher(make_policy("ssjf"), None, router, max_queue=100, retry_after_s=(1, 60))
        assert d.retry_after() == 60  # no completion seen: the longest wait
        for i in range(10):  # 10 completions within the same second
            d.release(d.submit(_req(i, 5.0)))
        queued = [d.submit(_req(100 + i, 5.0)) for i in range(40)]  # 1 running + 39 queued
        assert d.queue_len == 39
        # 10 completions/s observed: 39 queued + the new one drain in 4 s.
        assert d.retry_after() == 4
        for t in queued:
            d.release(t)

    asyncio.run(run())


def test_queue_is_bounded_in_bytes_and_per_tenant():
    async def run() -> None:
        router = Router(["http://r0"], 1, cooldown_s=1.0)
        d = Dispatcher(
            make_policy("ssjf"),
            None,
            router,
            max_queue=10,
            max_queue_bytes=1000,
            tenant_share=0.5,
        )
        running = d.submit(_req(0, 5.0), 10)
        a = [d.submit(_req(1 + i, 5.0, tenant="a"), 100) for i in range(5)]
        with pytest.raises(GatewayError) as e:  # tenant a holds its share of the count
            d.submit(_req(9, 5.0, tenant="a"), 1)
        assert e.value.status == 429 and "tenant" in e.value.message
        b = [d.submit(_req(10, 5.0, tenant="b"), 400)]
        with pytest.raises(GatewayError) as e:  # 900 bytes queued: 200 more do not fit
            d.submit(_req(11, 5.0, tenant="c"), 200)
        assert e.value.status == 429 and "bytes" in e.value.message
        assert d.queued_bytes == 900
        for t in [running, *a, *b]:
            d.release(t)
        assert d.queued_bytes == 0 and d.queue_len == 0 and d.in_flight == 0

    asyncio.run(run())


def test_only_queued_requests_settle_their_fair_share_charge():
    async def run() -> None:
        router = Router(["http://r0"], 1, cooldown_s=1.0)
        d = Dispatcher(make_policy("ssjf"), None, router, max_queue=10)
        first = d.submit(_req(0, 50.0, tenant="a"))  # started at once: never charged
        queued = d.submit(_req(1, 50.0, tenant="a"))
        d.release(first)  # the queued one is popped and charged to tenant a
        charged = dict(d.queue.counters)
        d.settle(first, 5_000)  # no charge to settle
        assert dict(d.queue.counters) == charged
        d.settle(queued, 50)  # predicted exactly: unchanged
        assert dict(d.queue.counters) == charged
        d.release(queued)

    asyncio.run(run())
