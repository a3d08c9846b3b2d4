"""Online retraining in the simulator: a :class:`~ssjf.sim.engines.base.Feedback`.

On each arrival, in this order:

1. completions that finished by the arrival (the simulator's one time rule,
   :func:`~ssjf.sim.engines.arrivals.horizon`, as in
   :class:`~ssjf.sim.calibration.CalibrationFeedback`) are fed, in completion
   order, to the :class:`~ssjf.retrain.Retrainer` and to the calibrator;
2. when the retrainer says a retrain is due, it runs **synchronously**:
   simulated time does not advance while the candidate fits. The replay charges
   no time for the fit, whereas the gateway fits in the background and keeps
   serving with the old predictor meanwhile, so a replayed swap lands a few
   completions earlier than it would live;
3. the arriving request is re-predicted by the serving predictor
   (``predict([prompt], [model])``), then calibrated on top.

A request's estimate therefore never uses its own or a later request's length.
The calibrator is reset whenever the serving predictor is swapped: its ratios
``true / predicted`` referred to the old predictor's points. Completions of
requests predicted by an older version are re-predicted by the serving one
before the calibrator sees them (their prompt is known; only finished requests
are used). Requests that arrive with no prompt keep their estimate untouched:
they are neither re-predicted nor calibrated nor learnt from.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ssjf.calibration import CalibrationSettings, Calibrator
from ssjf.estimate import LengthEstimate
from ssjf.request import Request
from ssjf.retrain import Completion, Retrainer, RetrainEvent
from ssjf.sim.engines.arrivals import horizon


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """A retrain as the replay saw it: when, after how many arrivals and completions."""

    time: float  # simulated time of the arrival that applied the due completion
    arrivals: int  # requests that had arrived before this one (its 0-based arrival index)
    completions: int  # completions fed to the retrainer so far
    event: RetrainEvent


@dataclass(frozen=True, slots=True, order=True)
class _Done:
    """A buffered completion; ordered by time, then arrival order (engines may report ties
    in any order)."""

    time: float
    arrival: float
    seq: int
    prompt: str
    model: str | None
    raw: float  # the serving predictor's raw point for it (before calibration)
    version: int  # the version that predicted ``raw``
    served: LengthEstimate  # what it was scheduled with (imputes a censored length)
    length: int
    censored: bool


class RetrainFeedback:
    """Retrains the serving predictor from completions, causally; use a fresh one per run.

    ``calibration`` None turns calibration off (retraining alone). ``events``
    lists every retrain (swapped or not); ``estimated`` counts re-predicted requests.
    """

    def __init__(
        self,
        retrainer: Retrainer,
        calibration: CalibrationSettings | None = None,
        *,
        calibrate: bool = True,
    ) -> None:
        self.retrainer = retrainer
        self._cal_settings = calibration
        self.calibrator: Calibrator | None = Calibrator(calibration) if calibrate else None
        self._pending: list[_Done] = []
        #: id(request) -> (raw point, version that predicted it, estimate it was served with)
        self._raw: dict[int, tuple[float, int, LengthEstimate]] = {}
        self._seq = 0
        self.arrivals = 0
        self.completions = 0
        self.estimated = 0
        self.events: list[ReplayEvent] = []

    def on_arrival(self, req: Request) -> None:
        """Learn from completions by ``req.arrival`` (retrain if due), then re-predict ``req``."""
        pending = self._pending
        if pending:
            h = horizon(req.arrival)
            while pending and pending[0].time <= h:
                self._learn(heapq.heappop(pending), req.arrival)
        self.arrivals += 1
        if req.prompt is None:
            return
        serving = self.retrainer.predictor
        est = serving.predict([req.prompt], [req.model])[0]
        served = est if self.calibrator is None else self.calibrator.estimate(est, req.model)
        self._raw[id(req)] = (est.point, self.retrainer.version, served)
        self.estimated += 1
        req.estimate = served

    def on_complete(self, req: Request, output_tokens: int, now: float) -> None:
        """Buffer a completion until an arrival after it (censored if it hit max_tokens)."""
        raw = self._raw.pop(id(req), None)
        if raw is None or req.prompt is None:
            return
        censored = req.max_tokens is not None and output_tokens >= req.max_tokens
        done = _Done(now, req.arrival, self._seq, req.prompt, req.model, *raw, output_tokens,
                     censored)  # fmt: skip
        self._seq += 1
        heapq.heappush(self._pending, done)

    def _learn(self, d: _Done, now: float) -> None:
        rt = self.retrainer
        self.completions += 1
        due = rt.observe(Completion(d.prompt, d.model, d.length, d.censored, estimate=d.served))
        if self.calibrator is not None:
            raw = d.raw
            if d.version != rt.version:  # predicted by a predictor no longer serving
                raw = rt.predictor.predict([d.prompt], [d.model])[0].point
            self.calibrator.observe(d.model, raw, d.length, d.censored)
        if not due:
            return
        event = rt.retrain()
        self.events.append(ReplayEvent(now, self.arrivals, self.completions, event))
        if event.swapped and self.calibrator is not None:
            self.calibrator = Calibrator(self._cal_settings)
