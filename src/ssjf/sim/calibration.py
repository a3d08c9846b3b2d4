"""Self-calibration in the simulator: a :class:`~ssjf.sim.engines.base.Feedback`.

Each request's estimate is replaced, just before it first enters the queue,
by the :class:`~ssjf.calibration.Calibrator`'s correction learnt from the
completions that finished by its arrival, and nothing later. Engines may
report a completion that finishes after an arrival before queueing that
arrival (the event-skipping engine computes runs of steps at once), so
completions wait in a buffer, ordered by time, until an arrival at or after
their completion time needs them. "At or after" uses the simulator's one time
rule (:func:`~ssjf.sim.engines.arrivals.horizon`): a completion a few ulps
after an arrival on the same step boundary counts as before it, which keeps
the event-skipping engine and the step reference identical.
"""

from __future__ import annotations

import heapq

from ssjf.calibration import CalibrationSettings, Calibrator
from ssjf.estimate import LengthEstimate
from ssjf.request import Request
from ssjf.sim.engines.arrivals import horizon


class CalibrationFeedback:
    """Calibrates estimates from completions, causally; use a fresh one per run.

    ``informed`` counts requests whose estimate used at least one completion,
    ``estimated`` those that had an estimate to calibrate at all.
    """

    def __init__(self, settings: CalibrationSettings | None = None) -> None:
        self.calibrator = Calibrator(settings)
        #: (completion time, arrival, id text, seq, model, raw point, length, censored):
        #: ties at one time are applied in arrival order, whatever order engines report.
        self._pending: list[tuple[float, float, str, int, str | None, float, int, bool]] = []
        self._raw: dict[int, LengthEstimate] = {}  # id(request) -> its raw estimate
        self._seq = 0
        self.informed = 0
        self.estimated = 0

    def on_arrival(self, req: Request) -> None:
        """Learn from completions by ``req.arrival``, then calibrate ``req.estimate``."""
        pending = self._pending
        if pending:
            h = horizon(req.arrival)
            cal = self.calibrator
            while pending and pending[0][0] <= h:
                _, _, _, _, model, raw, length, censored = heapq.heappop(pending)
                cal.observe(model, raw, length, censored)
        if req.estimate is None:
            return  # nothing to scale, and nothing to learn from its completion
        self._raw[id(req)] = req.estimate
        self.estimated += 1
        if self.calibrator.completions:
            self.informed += 1
        req.estimate = self.calibrator.estimate(req.estimate, req.model)

    def on_complete(self, req: Request, output_tokens: int, now: float) -> None:
        """Buffer a completion until an arrival after it (censored if it hit max_tokens)."""
        raw = self._raw.pop(id(req), None)
        if raw is None:
            return
        censored = req.max_tokens is not None and output_tokens >= req.max_tokens
        item = (now, req.arrival, str(req.id), self._seq, req.model, raw.point, output_tokens,
                censored)  # fmt: skip
        self._seq += 1
        heapq.heappush(self._pending, item)
