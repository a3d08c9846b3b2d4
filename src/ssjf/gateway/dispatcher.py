"""The gateway-held queue: the simulator's WaitingQueue + guard, released into replica slots."""

from __future__ import annotations

import asyncio
import time

from ssjf.gateway.errors import GatewayError, queue_full
from ssjf.gateway.router import Replica, Router
from ssjf.policies import Policy
from ssjf.queue import StarvationGuard, WaitingQueue
from ssjf.request import Request


class Ticket:
    """One request's place in the gateway: queued, then holding a replica slot."""

    __slots__ = ("charged", "future", "queued_at", "released", "replica", "req", "started_at")

    def __init__(self, req: Request) -> None:
        self.req = req
        self.replica: Replica | None = None
        self.future: asyncio.Future[None] | None = None
        #: Predicted remaining tokens this ticket adds to its replica's outstanding work.
        self.charged = 0.0
        self.queued_at = time.monotonic()
        self.started_at = self.queued_at
        self.released = False

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

    With unlimited slots (``max_in_flight`` None) a request goes straight to a
    replica (the engine orders by priority). Otherwise requests beyond the free
    slots wait in a ``WaitingQueue`` ordered by the policy with the starvation
    guard — the same code the simulator's engines use — and each freed slot is
    handed to ``queue.pop(now)``. At most ``max_queue`` wait; beyond, 429.
    """

    def __init__(
        self,
        policy: Policy,
        guard: StarvationGuard | None,
        router: Router,
        max_queue: int,
        retry_after_s: int,
    ) -> None:
        self.queue = WaitingQueue(policy, guard)
        self.router = router
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self._tickets: dict[int, Ticket] = {}  # id(req) -> ticket, while queued

    @property
    def queue_len(self) -> int:
        return len(self.queue)

    @property
    def in_flight(self) -> int:
        return self.router.in_flight

    def check_capacity(self) -> None:
        """Raise 429 now if a new request could neither start nor queue (before predicting)."""
        if len(self.queue) >= self.max_queue and not (
            len(self.queue) == 0 and self.router.has_slot()
        ):
            raise queue_full(self.retry_after_s)

    def submit(self, req: Request) -> Ticket:
        """Start ``req`` on a replica if a slot is free and nobody waits; else queue it."""
        ticket = Ticket(req)
        if not self.queue:
            replica = self.router.pick()
            if replica is not None:
                self._grant(ticket, replica)
                return ticket
        if len(self.queue) >= self.max_queue:
            raise queue_full(self.retry_after_s)
        ticket.future = asyncio.get_running_loop().create_future()
        self._tickets[id(req)] = ticket
        self.queue.add(req, time.monotonic())
        if self.router.has_slot():
            # Not expected (every release drains), but never leave a slot idle while
            # requests wait: the policy picks among all of them, this one included.
            self._drain()
        return ticket

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
            self._tickets.pop(id(ticket.req), None)
            self.queue.remove(ticket.req)
            if ticket.future is not None and not ticket.future.done():
                ticket.future.cancel()
            return
        replica.in_flight -= 1
        replica.outstanding -= ticket.charged
        if replica.in_flight == 0:
            replica.outstanding = 0.0  # no float drift accumulates across requests
        ticket.charged = 0.0
        self._drain()

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
            ticket = self._tickets.pop(id(req))
            self._grant(ticket, replica)
            fut = ticket.future
            if fut is not None and not fut.done():
                fut.set_result(None)
            # A future already cancelled means its waiter is unwinding; its `wait`
            # handler calls release, which frees the slot granted here.


__all__ = ["Dispatcher", "GatewayError", "Ticket"]
