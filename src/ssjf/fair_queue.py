"""Per-tenant fair queueing: a virtual token counter per tenant (VTC), policy order inside.

One flooding tenant must not starve another. Following VTC (Sheng et al.,
"Fairness in Serving Large Language Models", OSDI 2024), each tenant has a
virtual counter of the tokens it was served, divided by its weight; the queue
serves the backlogged tenant with the smallest counter, and a tenant that becomes
backlogged has its counter lifted to the smallest counter among the backlogged
tenants, so it cannot bank credit while idle. Inside a tenant, requests keep the
policy's order (and tiers) of a ``WaitingQueue``.

Order of service at ``pop(now)``:

1. **Tiers, across tenants.** Only tenants whose head has the smallest tier
   compete: a trusted tenant's tier-0 request goes before any tenant's tier-1
   request, as in a single ``WaitingQueue``.
2. **VTC among those tenants:** the smallest counter; ties go to the tenant
   whose head request was enqueued first.
3. **Inside the chosen tenant, its ``WaitingQueue``**: the starvation guard
   first (its overdue request with the earliest deadline), else tier, policy
   key, enqueue order. The guard's promise holds within each tenant's share,
   and so does the tail budget's (``ssjf.queue``): a request's FCFS work and
   charges count its own tenant's requests only, since VTC, not the policy,
   decides how tenants overtake one another (the anchor, the recent p99 of FCFS
   work, is shared by all tenants).

Why the guard is per tenant: across tenants, a guard that serves every overdue
request by deadline turns into FCFS as soon as the queue is overloaded (every
queued request is overdue), and a flooding tenant's backlog then starves the
others: measured, a light tenant's requests waited behind 500 of a heavy one's.
VTC already bounds how long a backlogged tenant waits for its share; the guard
bounds how long a request waits for its tenant's turn.

Every request handed out charges its tenant
``(predicted_tokens + prompt_weight * prompt_tokens) / weight(tenant)``; when the
true length is known, ``correct`` replaces the predicted part with it (VTC counts
real tokens; the prediction is only the up-front charge). With one tenant this is
exactly a ``WaitingQueue``: the same requests in the same order.

Bounded state: a tenant's queue exists only while it has requests waiting. An
idle tenant's counter at or below the lift floor is forgotten (the lift rule
would raise it to the floor anyway); when the queue drains, all demand has been
met and every counter is forgotten; and idle counters above the floor are
capped (``max_idle_counters`` after each amortised sweep, never more than twice
that), the lowest dropped first (a dropped tenant regains at most about one
request's charge of credit). A correction for a forgotten tenant starts from
the floor.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TypeAlias

from ssjf.policies import Policy
from ssjf.queue import StarvationGuard, TailAnchor, WaitingQueue
from ssjf.request import Request
from ssjf.service import ServiceTime

#: A tenant's name; None is the default tenant (no API key, or a single-tenant setup).
Tenant: TypeAlias = str | None


class _Item:
    """One queued request: its tenant and global enqueue order."""

    __slots__ = ("req", "seq", "tenant")

    def __init__(self, tenant: Tenant, seq: int, req: Request) -> None:
        self.tenant = tenant
        self.seq = seq
        self.req = req


class _Backlog:
    """A backlogged tenant: its own policy-ordered queue and a count of queued tiers."""

    __slots__ = ("head_tier", "queue", "tiers")

    def __init__(self, queue: WaitingQueue) -> None:
        self.queue = queue
        self.tiers: dict[int, int] = {}  # tier -> requests queued at that tier
        # The head's tier is the smallest queued tier, whatever the policy or time,
        # because the tier is the first field of a WaitingQueue's order.
        self.head_tier = 0

    def count(self, tier: int, delta: int) -> None:
        """Track one request of ``tier`` entering (+1) or leaving (-1)."""
        n = self.tiers.get(tier, 0) + delta
        if n:
            self.tiers[tier] = n
        else:
            del self.tiers[tier]
        self.head_tier = min(self.tiers) if self.tiers else 0


class FairQueue:
    """Per-tenant queues served by a predicted-token fair share (VTC), policy order inside.

    Same interface as ``WaitingQueue`` (``add``, ``peek``, ``pop``, ``remove``,
    ``len``, ``in``, iteration, ``promotions``, ``policy``, ``guard``), so it can
    replace one wherever a queue is used; see the module docstring for the order
    of service and the charging rule. ``peek``/``pop`` scan the backlogged
    tenants, O(tenants) on top of the tenant queue's own cost: fine at a
    gateway's queue depth (about a thousand), not meant for a million tenants.
    """

    def __init__(
        self,
        policy: Policy,
        guard: StarvationGuard | None = None,
        weight: Callable[[Tenant], float] | None = None,
        *,
        prompt_weight: float = 0.0,
        max_idle_counters: int = 4096,
        service: ServiceTime | None = None,
    ) -> None:
        # prompt_weight 0: output tokens dominate decode time and are what VTC
        # counts; set it > 0 where prefill is a large share of the work.
        if not (prompt_weight >= 0 and math.isfinite(prompt_weight)):
            raise ValueError("FairQueue.prompt_weight must be finite and >= 0")
        if max_idle_counters < 0:
            raise ValueError("FairQueue.max_idle_counters must be >= 0")
        self.policy = policy
        self.guard = guard if guard is not None and guard.enabled else None
        #: Prices requests for the policy's tail budget (each tenant's WaitingQueue),
        #: whose anchor (the recent p99 of FCFS work) all tenants share: it outlives
        #: the tenant queues, which come and go with their backlogs.
        self.service = service
        self._anchor = TailAnchor()
        self.prompt_weight = prompt_weight
        self.max_idle_counters = max_idle_counters
        self._weight = weight
        self._backlog: dict[Tenant, _Backlog] = {}
        self._items: dict[int, _Item] = {}  # id(req) -> item
        self._counter = itertools.count()
        self._counters: dict[Tenant, float] = {}
        # Lift floor: the smallest backlogged counter (exactly, while any tenant is
        # backlogged); it never decreases. When none is, the last one's counter.
        self._floor = 0.0
        self._sweep_at = 64
        # Promoted requests handed out so far (the guard fired), for reporting.
        self.promotions = 0

    # -- the WaitingQueue interface -------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __contains__(self, req: Request) -> bool:
        return id(req) in self._items

    def __iter__(self) -> Iterator[Request]:
        """Waiting requests in no particular order."""
        return (it.req for it in self._items.values())

    def add(self, req: Request, now: float) -> None:
        """Enqueue ``req`` at time ``now`` in its tenant's queue."""
        if id(req) in self._items:
            raise ValueError(f"request {req.id!r} is already queued")
        tenant = req.tenant
        b = self._backlog.get(tenant)
        if b is None:
            # Becoming backlogged: lift to the floor so idle time banks no credit.
            self._counters[tenant] = max(self._counters.get(tenant, self._floor), self._floor)
            b = self._backlog[tenant] = _Backlog(
                WaitingQueue(self.policy, self.guard, self.service, self._anchor)
            )
        b.queue.add(req, now)
        b.count(req.tier, +1)
        self._items[id(req)] = _Item(tenant, next(self._counter), req)

    def remove(self, req: Request) -> bool:
        """Take ``req`` out of the queue (e.g. the client went away); False if absent."""
        item = self._items.pop(id(req), None)
        if item is None:
            return False
        b = self._backlog[item.tenant]
        b.queue.remove(req)
        b.count(req.tier, -1)
        if not b.queue:
            self._leave(item.tenant)
        return True

    def peek(self, now: float) -> Request | None:
        """The request ``pop(now)`` would return, without removing it."""
        b = self._fair_tenant(now)
        return b.queue.peek(now) if b is not None else None

    def pop(self, now: float) -> Request:
        """Remove and return the next request to serve at time ``now``, charging its tenant."""
        b = self._fair_tenant(now)
        if b is None:
            raise IndexError("pop from an empty FairQueue")
        before = b.queue.promotions
        req = b.queue.pop(now)
        self.promotions += b.queue.promotions - before
        tenant = self._items.pop(id(req)).tenant
        old = self._counters[tenant]
        self._counters[tenant] = old + self._cost(req) / self._weight_of(tenant)
        b.count(req.tier, -1)
        if not b.queue:
            self._leave(tenant)
        if old <= self._floor:
            self._advance_floor()  # it was at the minimum, which may have moved up
        return req

    def deadline_of(self, req: Request) -> float:
        """The guard's deadline of queued ``req`` (inf without a guard); KeyError if absent."""
        item = self._items.get(id(req))
        if item is None:
            raise KeyError(f"request {req.id!r} is not queued")
        return self._backlog[item.tenant].queue.deadline_of(req)

    def budget_of(self, req: Request) -> tuple[float, float]:
        """``(allowance, charged)`` of queued ``req`` in its tenant's queue; KeyError if absent."""
        item = self._items.get(id(req))
        if item is None:
            raise KeyError(f"request {req.id!r} is not queued")
        return self._backlog[item.tenant].queue.budget_of(req)

    # -- fairness -----------------------------------------------------------------------

    def correct(self, tenant: Tenant, predicted: float, actual: float) -> None:
        """Replace a served request's predicted output tokens by the ``actual`` count in the charge.

        Never takes a counter below the lift floor. A tenant whose counter was
        forgotten is corrected from the floor (its counter was at most that).
        """
        if not (math.isfinite(predicted) and math.isfinite(actual)):
            raise ValueError("FairQueue.correct: token counts must be finite")
        base = self._counters.get(tenant, self._floor)
        value = max(base + (actual - predicted) / self._weight_of(tenant), self._floor)
        if tenant in self._backlog or value > self._floor:
            self._counters[tenant] = value
        else:
            self._counters.pop(tenant, None)
        if tenant in self._backlog:
            self._advance_floor()  # corrections stay >= floor: only a rise can move it
        self._maybe_sweep()

    @property
    def counters(self) -> Mapping[Tenant, float]:
        """Virtual token counters (read-only view): backlogged tenants and some idle ones."""
        return MappingProxyType(self._counters)

    @property
    def floor(self) -> float:
        """The lift floor: the smallest backlogged counter (never decreases)."""
        return self._floor

    def tenants(self) -> list[Tenant]:
        """Backlogged tenants (with requests waiting), in the order they became backlogged."""
        return list(self._backlog)

    def tenant_len(self, tenant: Tenant) -> int:
        """Requests of ``tenant`` waiting."""
        b = self._backlog.get(tenant)
        return len(b.queue) if b is not None else 0

    def cost(self, req: Request) -> float:
        """Tokens charged up front for serving ``req``, before the tenant's weight."""
        return self._cost(req)

    # -- internals ---------------------------------------------------------------------

    def _cost(self, req: Request) -> float:
        return req.predicted_tokens + self.prompt_weight * req.prompt_tokens

    def _weight_of(self, tenant: Tenant) -> float:
        if self._weight is None:
            return 1.0
        w = self._weight(tenant)
        if not (w > 0 and math.isfinite(w)):
            raise ValueError(f"FairQueue: weight of tenant {tenant!r} must be finite and > 0")
        return w

    def _fair_tenant(self, now: float) -> _Backlog | None:
        # Smallest (head tier, counter); ties -> the head enqueued first. Heads are
        # only looked at for tied tenants, so the scan is O(backlogged tenants).
        counters = self._counters
        best_k: tuple[int, float] | None = None
        tied: list[_Backlog] = []
        for tenant, b in self._backlog.items():
            k = (b.head_tier, counters[tenant])
            if best_k is None or k < best_k:
                best_k, tied = k, [b]
            elif k == best_k:
                tied.append(b)
        if len(tied) <= 1:
            return tied[0] if tied else None
        items = self._items

        def head_seq(b: _Backlog) -> int:
            head = b.queue.peek(now)
            assert head is not None  # backlogged queues are never empty
            return items[id(head)].seq

        return min(tied, key=head_seq)

    def _advance_floor(self) -> None:
        if self._backlog:
            low = min(self._counters[t] for t in self._backlog)
            if low > self._floor:
                self._floor = low

    def _leave(self, tenant: Tenant) -> None:
        """``tenant`` has nothing left waiting: drop its queue, keep what matters of its counter."""
        del self._backlog[tenant]
        counter = self._counters[tenant]
        if not self._backlog:
            # Drained: the last one's counter is the floor (VTC lifts newcomers to it),
            # every tenant's demand was met, and there is no other credit to carry.
            self._floor = max(self._floor, counter)
            self._counters.clear()
            self._sweep_at = 64
            return
        if counter <= self._floor:
            self._advance_floor()  # it may have been the minimum
        if counter <= self._floor:
            del self._counters[tenant]
        self._maybe_sweep()

    def _maybe_sweep(self) -> None:
        # Amortised: sweep when the idle counters have doubled since the last sweep,
        # so they never exceed max(64, 2 * max_idle_counters).
        if len(self._counters) - len(self._backlog) <= self._sweep_at:
            return
        floor, backlog = self._floor, self._backlog
        idle = [(c, t) for t, c in self._counters.items() if t not in backlog and c > floor]
        if len(idle) > self.max_idle_counters:
            # Keep the highest counters: forgetting one near the floor loses least.
            idle.sort(key=lambda ct: ct[0])
            idle = idle[len(idle) - self.max_idle_counters :]
        kept = {t: c for c, t in idle}
        kept.update((t, self._counters[t]) for t in backlog)
        self._counters.clear()  # in place: views handed out by ``counters`` stay live
        self._counters.update(kept)
        self._sweep_at = max(64, 2 * len(idle))
