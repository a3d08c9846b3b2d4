"""The waiting queue: a policy's ordering plus a starvation guard.

Shared by the simulator's engines and the gateway's dispatcher, so both apply
exactly the same rules.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from ssjf.policies import Policy
from ssjf.request import Request


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
    """One queued request; ``alive`` goes False when it leaves either heap."""

    __slots__ = ("alive", "deadline", "key", "req", "seq", "tier")

    def __init__(self, tier: int, key: float, seq: int, deadline: float, req: Request) -> None:
        self.tier = tier
        self.key = key
        self.seq = seq
        self.deadline = deadline
        self.req = req
        self.alive = True

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
    the earlier ``add``, which keeps runs deterministic. The starvation guard
    overrides all of it, tiers included (see ``StarvationGuard``'s promise).
    Static keys are computed once at ``add`` and kept in a heap (O(log n));
    time-dependent policies are re-evaluated at each ``peek``/``pop`` by a scan
    (O(n)). Removal is lazy.
    """

    def __init__(self, policy: Policy, guard: StarvationGuard | None = None) -> None:
        self.policy = policy
        self.guard = guard if guard is not None and guard.enabled else None
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
        if not self.policy.time_dependent:
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
        self.remove(entry.req)
        return entry.req

    def _is_promotion(self, entry: _Entry, now: float) -> bool:
        # Promotion = the guard chose a request the policy would not have chosen.
        best = self._policy_best(now)
        return best is not entry

    def _select(self, now: float) -> _Entry | None:
        if self._live == 0:
            return None
        if self.guard is not None:
            heap = self._by_deadline
            while heap and not heap[0][2].alive:
                heapq.heappop(heap)
            if heap and heap[0][0] <= now:
                return heap[0][2]
        return self._policy_best(now)

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
