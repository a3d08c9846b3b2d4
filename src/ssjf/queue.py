"""The waiting queue: a policy's ordering, a tail budget and a starvation guard.

Shared by the simulator's engines and the gateway's dispatcher, so both apply
exactly the same rules.

**Tail budget** (the policy's ``tail`` setting, ``tau >= 1``; None = off).
Length-first orders buy their mean gain from the tail: a long request can be
overtaken without end. The budget bounds overtaking in predicted work. When
request ``i`` enters the queue it records ``F_i = W_i + s_i``: ``W_i`` the
predicted service of the requests of its tier already waiting (what FCFS would
serve before it), ``s_i`` its own predicted service (``ServiceTime``: prompt
prefill plus predicted output decode; without one, predicted output tokens,
which only rescales every allowance and charge alike). Its allowance is
``A_i = (tau - 1) x max(F_i, Q_i)``, ``Q_i`` the 99th percentile of ``F`` over
the last ``TAIL_WINDOW`` requests to enter (``i`` included). Handing out ``j``
charges ``s_j`` to every waiting request of its tier that entered before ``j``.
The queue hands out the policy's best request among those whose hand-out keeps
every such charge within its allowance; the oldest waiting request of a tier is
always allowed, so the rule never blocks.

Why ``max(F_i, Q_i)``: the target is the tail (p99 JCT within ``tau x``
FCFS's), and a request whose FCFS time is far below the tail does not set it.
Bounding each request by ``tau x`` its own FCFS time alone (``A_i = (tau - 1)
F_i``) also meets the target, but it forbids overtaking the requests that
arrive at a short queue, which is where most of SJF's mean gain is. Measured
(alpaca, serial engine, load 0.9, true lengths, tau 1.1): 36% of oracle SJF's
mean gain with the per-request rule, 48% with the anchor, both at p99 1.05x
FCFS's (docs/simulator.md).

**Promise.** For every request ``i``, the predicted service of the requests of
its tier that entered after ``i`` and were handed out before it by the policy's
order (not by the guard, whose promotions still charge) is ``<= A_i``. With
``tau = 1`` every policy serves each tier FCFS (up to requests of zero size). On a
serial engine whose service times are the predicted ones (exact estimates,
service equal to ``ServiceTime``), guard off, one tier: the unfinished work when
``i`` arrives is the same under both orders (both are work-conserving), FCFS
finishes ``i`` after exactly that plus ``s_i`` (``R + W_i + s_i``, ``R`` the rest
of the job in service), and the budgeted order after at most ``R + W_i + s_i +
A_i``, so ``JCT_i <= tau x max(FCFS_i, Q_i) + R``, with ``Q_i`` at most the same
percentile of the FCFS JCTs of those requests.

Tiers stay strict (a lower tier goes first whatever its budget): a tier-0
request neither charges nor is limited by tier-1 requests, as priority classes
are meant to. The starvation guard overrides the budget, as it overrides tiers.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from ssjf.policies import Policy
from ssjf.request import Request
from ssjf.service import ServiceTime

#: The tail budget's anchor: the TAIL_LEVEL quantile of the FCFS work of the last
#: TAIL_WINDOW requests to enter (module doc). 0.99 because the target is p99; 512
#: requests hold about five above it, and follow a load that drifts.
TAIL_LEVEL = 0.99
TAIL_WINDOW = 512


class TailAnchor:
    """The TAIL_LEVEL quantile of the FCFS work of the last TAIL_WINDOW requests to enter.

    One per queue; a ``FairQueue`` shares one among its tenants' queues, which
    come and go with their backlogs.
    """

    __slots__ = ("_ranked", "_recent")

    def __init__(self) -> None:
        self._recent: deque[float] = deque()
        self._ranked: list[float] = []

    def record(self, fcfs: float) -> float:
        """Record one request's FCFS work; return the quantile including it.

        O(TAIL_WINDOW) at worst (list insertion), independent of the queue length.
        """
        recent, ranked = self._recent, self._ranked
        recent.append(fcfs)
        bisect.insort(ranked, fcfs)
        if len(recent) > TAIL_WINDOW:
            del ranked[bisect.bisect_left(ranked, recent.popleft())]
        return ranked[min(len(ranked) - 1, int(TAIL_LEVEL * len(ranked)))]


@dataclass(frozen=True, slots=True)
class StarvationGuard:
    """Aging that promotes requests which waited too long, never reading true lengths.

    Each request gets a deadline when it enters the queue::

        deadline = arrival + min(max_wait_s, wait_factor * predicted_tokens * seconds_per_token)

    (either bound may be ``None`` = unbounded; both ``None`` disables the guard).

    **Promise.** Whenever the queue hands out a request at time ``t`` and some
    waiting request's deadline is ``<= t``, the request handed out is the waiting
    request with the earliest deadline (ties: earlier enqueue first), whatever
    its priority tier (and, in a ``FairQueue``, whatever its tenant). Hence on a
    serial engine, a request waits at most ``deadline - arrival`` plus the rest
    of the job in service at its deadline plus the service of the requests with
    earlier deadlines that are still waiting then; with ``max_wait_s`` alone this
    is FCFS among overdue requests, so no request waits unboundedly while the
    load is below capacity.
    """

    max_wait_s: float | None = None
    wait_factor: float | None = None
    seconds_per_token: float = 0.02

    def __post_init__(self) -> None:
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise ValueError("StarvationGuard.max_wait_s must be >= 0")
        if self.wait_factor is not None and self.wait_factor <= 0:
            raise ValueError("StarvationGuard.wait_factor must be > 0")
        if self.seconds_per_token <= 0:
            raise ValueError("StarvationGuard.seconds_per_token must be > 0")

    @property
    def enabled(self) -> bool:
        return self.max_wait_s is not None or self.wait_factor is not None

    def deadline(self, req: Request) -> float:
        """Time after which ``req`` jumps ahead of the policy's order."""
        bound = math.inf
        if self.max_wait_s is not None:
            bound = self.max_wait_s
        if self.wait_factor is not None:
            bound = min(bound, self.wait_factor * req.predicted_tokens * self.seconds_per_token)
        return req.arrival + bound


class _Entry:
    """One queued request; ``alive`` goes False when it leaves either heap.

    ``size``, ``allowance`` and ``charged`` are the tail budget's bookkeeping
    (predicted service, ``A_i``, overtaking work so far); unused when it is off.
    """

    __slots__ = ("alive", "allowance", "charged", "deadline", "key", "req", "seq", "size", "tier")

    def __init__(self, tier: int, key: float, seq: int, deadline: float, req: Request) -> None:
        self.tier = tier
        self.key = key
        self.seq = seq
        self.deadline = deadline
        self.req = req
        self.alive = True
        self.size = 0.0
        self.allowance = math.inf
        self.charged = 0.0

    def __lt__(self, other: _Entry) -> bool:
        # Order (tier, key, seq), field by field: no tuples built on the heap's hot
        # path, so tier-0-only workloads (the simulator) pay one int compare.
        if self.tier == other.tier:
            if self.key == other.key:
                return self.seq < other.seq
            return self.key < other.key
        return self.tier < other.tier


class WaitingQueue:
    """Requests waiting for service, ordered by a policy, with a starvation guard.

    Interface (as in vLLM's request queue): ``add``, ``peek``, ``pop``,
    ``remove``, ``len``. Order is ``(request.tier, policy key, enqueue order)``:
    a lower priority tier goes first whatever the key, and ties in the key go to
    the earlier ``add``, which keeps runs deterministic. With the policy's
    ``tail`` set, only requests the tail budget allows compete (module doc). The
    starvation guard overrides all of it, tiers included (see
    ``StarvationGuard``'s promise). Static keys are computed once at ``add`` and
    kept in a heap (O(log n)); time-dependent policies, and any policy under a
    tail budget, are evaluated at each ``peek``/``pop`` by a scan (O(n)).
    Removal is lazy. ``service`` prices requests for the budget; ``anchor`` is
    its tail anchor (a fresh one unless shared).
    """

    def __init__(
        self,
        policy: Policy,
        guard: StarvationGuard | None = None,
        service: ServiceTime | None = None,
        anchor: TailAnchor | None = None,
    ) -> None:
        self.policy = policy
        self.guard = guard if guard is not None and guard.enabled else None
        self.service = service
        self.tail: float | None = getattr(policy, "tail", None)
        # Tail budget: predicted work waiting and requests waiting, per tier.
        self._work: dict[int, float] = {}
        self._count: dict[int, int] = {}
        self.anchor = anchor if anchor is not None else TailAnchor()
        self._heap: list[_Entry] = []
        self._by_deadline: list[tuple[float, int, _Entry]] = []
        self._entries: dict[int, _Entry] = {}  # id(req) -> entry
        self._counter = itertools.count()
        self._live = 0
        # Promoted requests handed out so far (the guard fired), for reporting.
        self.promotions = 0

    def __len__(self) -> int:
        return self._live

    def __bool__(self) -> bool:
        return self._live > 0

    def __contains__(self, req: Request) -> bool:
        return id(req) in self._entries

    def __iter__(self) -> Iterator[Request]:
        """Waiting requests in no particular order."""
        return (e.req for e in self._entries.values())

    def add(self, req: Request, now: float) -> None:
        """Enqueue ``req`` at time ``now``."""
        if id(req) in self._entries:
            raise ValueError(f"request {req.id!r} is already queued")
        req.enqueued_at = now
        key = 0.0 if self.policy.time_dependent else self.policy.key(req, now)
        deadline = self.guard.deadline(req) if self.guard is not None else math.inf
        entry = _Entry(req.tier, key, next(self._counter), deadline, req)
        self._entries[id(req)] = entry
        self._live += 1
        if self.tail is not None:
            tier, size = req.tier, self._size(req)
            work = self._work.get(tier, 0.0)
            entry.size = size
            fcfs = work + size
            entry.allowance = (self.tail - 1.0) * max(fcfs, self.anchor.record(fcfs))
            self._work[tier] = work + size
            self._count[tier] = self._count.get(tier, 0) + 1
        elif not self.policy.time_dependent:
            heapq.heappush(self._heap, entry)
        if self.guard is not None:
            heapq.heappush(self._by_deadline, (deadline, entry.seq, entry))

    def remove(self, req: Request) -> bool:
        """Take ``req`` out of the queue (e.g. the client went away); False if absent."""
        entry = self._entries.pop(id(req), None)
        if entry is None:
            return False
        entry.alive = False
        self._live -= 1
        if self.tail is not None:
            tier = entry.tier
            left = self._count[tier] - 1
            if left:
                self._count[tier] = left
                self._work[tier] = max(self._work[tier] - entry.size, 0.0)
            else:  # empty: drop the tier, and any float drift of its running sum
                del self._count[tier], self._work[tier]
        # Removal is lazy; keep dead entries from piling up when many requests leave
        # without being popped (gateway clients that disconnect while queued).
        if self._live == 0:
            self._heap.clear()
            self._by_deadline.clear()
        elif len(self._heap) + len(self._by_deadline) > 4 * self._live + 64:
            self._heap = [e for e in self._heap if e.alive]
            heapq.heapify(self._heap)
            self._by_deadline = [t for t in self._by_deadline if t[2].alive]
            heapq.heapify(self._by_deadline)
        return True

    def deadline_of(self, req: Request) -> float:
        """The guard's deadline of queued ``req`` (inf without a guard); KeyError if absent."""
        try:
            return self._entries[id(req)].deadline
        except KeyError:
            raise KeyError(f"request {req.id!r} is not queued") from None

    def budget_of(self, req: Request) -> tuple[float, float]:
        """``(allowance, charged)`` of queued ``req`` under the tail budget; KeyError if absent.

        ``(inf, 0.0)`` with the budget off.
        """
        try:
            entry = self._entries[id(req)]
        except KeyError:
            raise KeyError(f"request {req.id!r} is not queued") from None
        return entry.allowance, entry.charged

    def peek(self, now: float) -> Request | None:
        """The request ``pop(now)`` would return, without removing it."""
        entry = self._select(now)
        return entry.req if entry is not None else None

    def pop(self, now: float) -> Request:
        """Remove and return the next request to serve at time ``now``."""
        entry = self._select(now)
        if entry is None:
            raise IndexError("pop from an empty WaitingQueue")
        if entry.deadline <= now:
            self.promotions += 1 if self._is_promotion(entry, now) else 0
        if self.tail is not None:
            self._charge(entry)
        self.remove(entry.req)
        return entry.req

    def _is_promotion(self, entry: _Entry, now: float) -> bool:
        # Promotion = the guard chose a request the policy would not have chosen.
        best = self._budget_best(now) if self.tail is not None else self._policy_best(now)
        return best is not entry

    def _size(self, req: Request) -> float:
        """Predicted service of ``req`` for the tail budget (0 if unknown or not a number)."""
        tokens = self.policy.size_tokens(req)
        svc = self.service
        if svc is None:
            size = tokens
        else:  # as ServiceTime.remaining: a preempted request recomputes what it generated
            size = svc.prefill(req.prompt_tokens + req.generated) + svc.decode_s_per_token * tokens
        return size if size >= 0 else 0.0  # NaN and negatives price as free

    def _charge(self, out: _Entry) -> None:
        # Every waiting request of out's tier that entered before it is overtaken
        # by out's predicted service. _entries keeps enqueue order (a dict keeps
        # insertion order; a re-added request gets a new seq at the end), so the
        # older ones are exactly those before it: one O(n) pass per pop.
        size, tier = out.size, out.tier
        for e in self._entries.values():
            if e is out:
                break
            if e.tier == tier:
                e.charged += size

    def _select(self, now: float) -> _Entry | None:
        if self._live == 0:
            return None
        if self.guard is not None:
            heap = self._by_deadline
            while heap and not heap[0][2].alive:
                heapq.heappop(heap)
            if heap and heap[0][0] <= now:
                return heap[0][2]
        if self.tail is not None:
            return self._budget_best(now)
        return self._policy_best(now)

    def _budget_best(self, now: float) -> _Entry | None:
        # The policy's best request among those the tail budget allows: j is allowed
        # when s_j fits the smallest remaining allowance of the older waiting requests
        # of its tier. One O(n) pass in enqueue order, carrying that minimum per tier;
        # the oldest request of a tier meets an empty minimum (inf), so it always qualifies.
        td, key = self.policy.time_dependent, self.policy.key
        room: dict[int, float] = {}
        best: _Entry | None = None
        best_k: tuple[int, float, int] = (0, math.inf, 0)
        for e in self._entries.values():
            tier = e.tier
            r = room.get(tier, math.inf)
            if e.size <= r:
                k = (tier, key(e.req, now) if td else e.key, e.seq)
                if best is None or k < best_k:
                    best, best_k = e, k
            left = e.allowance - e.charged
            if left < r:
                room[tier] = left
        return best

    def _policy_best(self, now: float) -> _Entry | None:
        if self.policy.time_dependent:
            key = self.policy.key
            best: _Entry | None = None
            best_k: tuple[int, float, int] = (0, math.inf, 0)
            for e in self._entries.values():
                k = (e.tier, key(e.req, now), e.seq)
                if best is None or k < best_k:
                    best, best_k = e, k
            return best
        heap = self._heap
        while heap and not heap[0].alive:
            heapq.heappop(heap)
        return heap[0] if heap else None
