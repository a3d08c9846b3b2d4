"""Arrivals: moving requests into the waiting queue as time passes, with one time rule.

Every engine model asks the same question at each decision point ("which
requests have arrived by time ``t``?") and answers it here, so that all engines
share one definition of "present".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ssjf.queue import WaitingQueue
from ssjf.request import Request

if TYPE_CHECKING:
    from ssjf.sim.engines.base import Feedback

#: The one time-tolerance rule of the simulator: an arrival at most ``TIME_TOL``
#: (relative) after time ``t`` counts as present at ``t``. Why: step boundaries
#: are sums of floats, so two exact models of the same schedule (the
#: event-skipping engine and the step reference) put a boundary a few ulps
#: apart; an arrival on a boundary (timestamps and step costs on the same grid,
#: e.g. milliseconds and the paper's 0.02 s) would then be admitted by one and
#: not by the other. The shift is at most 10 us per 1e5 s of simulated time.
TIME_TOL = 1e-10


def horizon(t: float) -> float:
    """Latest arrival time that counts as present at time ``t``."""
    return t + TIME_TOL * (1.0 + abs(t))


class Arrivals:
    """Requests not yet queued, in arrival order; :meth:`admit` queues those present.

    ``next_time`` is the arrival time of the first request not yet queued
    (``inf`` once all are queued); engines read it to jump over idle time or to
    stop a run of steps at the next arrival.
    """

    __slots__ = ("_feedback", "_pos", "_queue", "_reqs", "next_time", "times")

    def __init__(
        self,
        reqs: list[Request],
        order: list[int],
        queue: WaitingQueue,
        feedback: Feedback | None = None,
    ) -> None:
        self._reqs = [reqs[i] for i in order]
        self._queue = queue
        self._feedback = feedback
        self._pos = 0
        self.times = [r.arrival for r in self._reqs]
        self.next_time = self.times[0] if self.times else math.inf

    def admit(self, t: float) -> None:
        """Queue every request present at ``t`` (arrived by :func:`horizon` of ``t``)."""
        h = t + TIME_TOL * (1.0 + abs(t))  # horizon(t), inlined: called at every step boundary
        if self.next_time > h:
            return
        reqs, times, queue, pos, fb = self._reqs, self.times, self._queue, self._pos, self._feedback
        n = len(times)
        while pos < n and times[pos] <= h:
            r = reqs[pos]
            if fb is not None:
                fb.on_arrival(r)
            queue.add(r, r.arrival)
            pos += 1
        self._pos = pos
        self.next_time = times[pos] if pos < n else math.inf

    def until_work(self, t: float) -> float:
        """Queue the requests present at ``t``; if none wait, jump to the next arrival.

        Returns the time from which the queue is non-empty (``t`` or later); for
        engines whose only work is the queue (nothing keeps running across calls).
        """
        self.admit(t)
        if not self._queue:
            t = self.next_time
            self.admit(t)
        return t
