"""The gateway-held queue: the scheduling core's FairQueue + guard, released into replica slots."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable

from ssjf.fair_queue import FairQueue
from ssjf.gateway.errors import GatewayError, queue_full
from ssjf.gateway.router import Replica, Router
from ssjf.policies import Policy
from ssjf.queue import StarvationGuard
from ssjf.request import Request
from ssjf.service import ServiceTime


class Ticket:
    """One request's place in the gateway: queued, then holding a replica slot."""

    __slots__ = (
        "calibration_base",
        "charged",
        "fair_charged",
        "future",
        "nbytes",
        "queued_at",
        "released",
        "replica",
        "req",
        "started_at",
    )

    def __init__(self, req: Request) -> None:
        self.req = req
        self.replica: Replica | None = None
        self.future: asyncio.Future[None] | None = None
        #: Predicted remaining tokens this ticket adds to its replica's outstanding work.
        self.charged = 0.0
        self.queued_at = time.monotonic()
        self.started_at = self.queued_at
        self.released = False
        #: Body bytes this ticket holds while queued (bounded by max_queue_bytes).
        self.nbytes = 0
        #: The fair queue charged this request's predicted tokens to its tenant.
        self.fair_charged = False
        #: The predictor's raw point behind a calibrated estimate (None: not calibrated);
        #: with the true length at the end it teaches the calibrator.
        self.calibration_base: float | None = None

    @property
    def queue_wait(self) -> float:
        """Seconds between arrival at the dispatcher and getting a slot."""
        return self.started_at - self.queued_at

    def progress(self, tokens: int = 1) -> None:
        """``tokens`` more were generated: lower the replica's outstanding work."""
        replica = self.replica
        if replica is None or self.charged <= 1.0:
            return
        step = min(float(tokens), self.charged - 1.0)
        self.charged -= step
        replica.outstanding -= step


class Dispatcher:
    """Admits, orders and releases requests; every ticket ends in ``release``.

    Each replica takes at most its slot count (``max_in_flight``, or the
    admission bound ``engine_max_concurrency`` when the engine orders by
    priority); requests beyond wait in a ``FairQueue``: per-tenant queues
    ordered by the policy with the starvation guard (the simulator's
    ``WaitingQueue``), tenants served by virtual token counters. Each freed slot
    goes to ``queue.pop(now)``. The queue is bounded in requests and in body
    bytes, overall and per tenant; beyond, 429 with a Retry-After from the
    observed drain rate.
    """

    #: Completions remembered for the drain rate behind Retry-After.
    DRAIN_WINDOW_S = 30.0

    def __init__(
        self,
        policy: Policy,
        guard: StarvationGuard | None,
        router: Router,
        max_queue: int,
        retry_after_s: int | tuple[int, int] = 1,
        *,
        max_queue_bytes: int | None = None,
        tenant_share: float = 1.0,
        weight: Callable[[str | None], float] | None = None,
        service: ServiceTime | None = None,
    ) -> None:
        # service prices requests for the policy's tail budget, as in the simulator.
        self.queue = FairQueue(policy, guard, weight=weight, service=service)
        self.router = router
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.tenant_share = tenant_share
        lo, hi = retry_after_s if isinstance(retry_after_s, tuple) else (retry_after_s,) * 2
        self.retry_after_bounds = (lo, max(lo, hi))
        self._tickets: dict[int, Ticket] = {}  # id(req) -> ticket, while queued
        self.queued_bytes = 0
        self._tenant_bytes: dict[str | None, int] = {}
        self._done: collections.deque[float] = collections.deque()

    @property
    def queue_len(self) -> int:
        return len(self.queue)

    @property
    def in_flight(self) -> int:
        return self.router.in_flight

    @property
    def tickets_waiting(self) -> int:
        """Queued tickets the dispatcher tracks (equals queue_len unless a ticket leaked)."""
        return len(self._tickets)

    @property
    def promotions(self) -> int:
        """Requests the starvation guard moved ahead of the policy's order."""
        return self.queue.promotions

    def retry_after(self) -> int:
        """Seconds until the queue has drained at the completion rate of the last 30 s."""
        lo, hi = self.retry_after_bounds
        now = time.monotonic()
        done = self._done
        while done and done[0] < now - self.DRAIN_WINDOW_S:
            done.popleft()
        if not done:
            return hi
        rate = len(done) / max(now - done[0], 1.0)
        return max(lo, min(hi, math.ceil((len(self.queue) + 1) / rate)))

    def check_capacity(self, tenant: str | None = None, nbytes: int = 0) -> None:
        """Raise 429 now if a new request could neither start nor queue (before predicting)."""
        if not self.queue and self.router.has_slot():
            return
        if len(self.queue) >= self.max_queue:
            raise queue_full(self.retry_after())
        if self.max_queue_bytes is not None and self.queued_bytes + nbytes > self.max_queue_bytes:
            raise queue_full(self.retry_after(), "the gateway queue holds too many bytes")
        if tenant is not None and self.tenant_share < 1.0:
            # One tenant may fill only its share, so another can still queue behind it.
            if self.queue.tenant_len(tenant) >= max(1, int(self.tenant_share * self.max_queue)):
                raise queue_full(self.retry_after(), "this tenant's share of the queue is full")
            if self.max_queue_bytes is not None and self._tenant_bytes.get(
                tenant, 0
            ) + nbytes > int(self.tenant_share * self.max_queue_bytes):
                raise queue_full(self.retry_after(), "this tenant's share of the queue is full")

    def submit(self, req: Request, nbytes: int = 0) -> Ticket:
        """Start ``req`` on a replica if a slot is free and nobody waits; else queue it."""
        ticket = Ticket(req)
        if not self.queue:
            replica = self.router.pick()
            if replica is not None:
                self._grant(ticket, replica)
                return ticket
        self.check_capacity(req.tenant, nbytes)
        ticket.future = asyncio.get_running_loop().create_future()
        ticket.nbytes = nbytes
        self._tickets[id(req)] = ticket
        self.queued_bytes += nbytes
        self._tenant_bytes[req.tenant] = self._tenant_bytes.get(req.tenant, 0) + nbytes
        self.queue.add(req, time.monotonic())
        if self.router.has_slot():
            # Not expected (every release drains), but never leave a slot idle while
            # requests wait: the policy picks among all of them, this one included.
            self._drain()
        return ticket

    def settle(self, ticket: Ticket, actual: int) -> None:
        """The request produced ``actual`` tokens: settle its tenant's fair-share charge.

        Only requests the fair queue charged (they waited) are settled: one that
        started at once was never charged, and crediting it would hand out credit.
        """
        if ticket.fair_charged:
            ticket.fair_charged = False
            self.queue.correct(ticket.req.tenant, ticket.req.predicted_tokens, actual)

    async def wait(self, ticket: Ticket) -> None:
        """Until ``ticket`` holds a slot. Cancelled (client gone) -> the ticket is dropped."""
        if ticket.replica is not None:
            return
        assert ticket.future is not None
        try:
            await ticket.future
        except asyncio.CancelledError:
            self.release(ticket)
            raise

    def release(self, ticket: Ticket) -> None:
        """The request is over (answered, failed or abandoned): free its place. Idempotent."""
        if ticket.released:
            return
        ticket.released = True
        replica = ticket.replica
        if replica is None:
            # Still queued: take it out so it never starts.
            self._unqueue(ticket)
            self.queue.remove(ticket.req)
            if ticket.future is not None and not ticket.future.done():
                ticket.future.cancel()
            return
        replica.in_flight -= 1
        replica.outstanding -= ticket.charged
        if replica.in_flight == 0:
            replica.outstanding = 0.0  # no float drift accumulates across requests
        ticket.charged = 0.0
        self._done.append(time.monotonic())
        if len(self._done) > 100_000:
            self._done.popleft()
        self._drain()

    def _unqueue(self, ticket: Ticket) -> None:
        if self._tickets.pop(id(ticket.req), None) is None:
            return
        self.queued_bytes -= ticket.nbytes
        tenant = ticket.req.tenant
        left = self._tenant_bytes.get(tenant, 0) - ticket.nbytes
        if left > 0:
            self._tenant_bytes[tenant] = left
        else:
            self._tenant_bytes.pop(tenant, None)

    def reroute(self, ticket: Ticket) -> bool:
        """Move a granted ticket whose replica refused the connection to another replica.

        Only replicas with a free slot that are not cooling down qualify; on
        failure the ticket keeps its slot (and the caller reports the error).
        """
        old = ticket.replica
        if old is None or ticket.released:
            return False
        old.in_flight -= 1
        old.outstanding -= ticket.charged
        if old.in_flight == 0:
            old.outstanding = 0.0
        new = self.router.pick()
        if new is None or new is old or new.down_until > time.monotonic():
            new = old
        queue_wait = ticket.queue_wait
        self._grant(ticket, new)
        ticket.started_at = ticket.queued_at + queue_wait  # queue wait is unchanged
        if new is not old:
            self._drain()  # the old replica's slot is free again
        return new is not old

    def _grant(self, ticket: Ticket, replica: Replica) -> None:
        ticket.replica = replica
        ticket.started_at = time.monotonic()
        ticket.charged = max(ticket.req.predicted_tokens, 1.0)
        replica.in_flight += 1
        replica.outstanding += ticket.charged

    def _drain(self) -> None:
        """Hand free slots to the queue's best requests."""
        queue = self.queue
        while queue:
            replica = self.router.pick()
            if replica is None:
                return
            req = queue.pop(time.monotonic())
            ticket = self._tickets[id(req)]
            ticket.fair_charged = True  # the fair queue charged its tenant on pop
            self._unqueue(ticket)
            self._grant(ticket, replica)
            fut = ticket.future
            if fut is not None and not fut.done():
                fut.set_result(None)
            # A future already cancelled means its waiter is unwinding; its `wait`
            # handler calls release, which frees the slot granted here.


__all__ = ["Dispatcher", "GatewayError", "Ticket"]
