"""BackgroundRetrainer: observe never waits for a fit, one job at a time, the swap is atomic."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from ssjf.predict.baselines import InputLengthPredictor
from ssjf.retrain import BackgroundRetrainer, Completion, Retrainer, RetrainEvent, RetrainSettings
from tests.predict.retrain_factories import base_data, traffic

#: Safety bound on waits for events the test itself causes (never reached when it passes).
WAIT_S = 60


class _Gated(InputLengthPredictor):
    """A candidate's fit blocks until the test opens the gate; counts fits under way."""

    gate: ClassVar[threading.Event]
    entered: ClassVar[threading.Event]
    active: ClassVar[list[int]]  # [fits under way, most at once, fits started]

    def fit(
        self, prompts: Sequence[str], lengths: Sequence[float], models: Any = None, **kw: Any
    ) -> Any:
        a = self.active
        a[0] += 1
        a[1] = max(a[1], a[0])
        a[2] += 1
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        try:
            return super().fit(prompts, lengths, models, **kw)
        finally:
            a[0] -= 1


def test_observers_never_wait_for_a_fit_and_readers_see_a_whole_predictor() -> None:
    _Gated.gate, _Gated.entered, _Gated.active = threading.Event(), threading.Event(), [0, 0, 0]
    base = base_data()
    serving = _Gated()
    InputLengthPredictor.fit(serving, base.prompts, base.lengths, base.models)
    events: list[RetrainEvent] = []
    done = threading.Event()

    def on_event(e: RetrainEvent) -> None:
        events.append(e)
        done.set()

    bg = BackgroundRetrainer(
        Retrainer(serving, RetrainSettings(every=50, min_records=200, holdout=50), base=base),
        on_event,
    )
    stream = traffic(200)
    for c in stream:
        bg.observe(c)
    assert _Gated.entered.wait(WAIT_S) and bg.running  # the first fit holds in the worker

    # While it holds: 8 threads observe (many retrains now due) and 4 threads predict.
    probe = [c.prompt for c in stream[:16]]
    seen: set[int] = set()
    stop = threading.Event()
    failures: list[BaseException] = []

    def observer(k: int) -> None:
        for c in traffic(200, seed=10 + k, start=1000 * (k + 1)):
            bg.observe(c)

    def reader() -> None:
        try:
            while not stop.is_set():
                p = bg.predictor  # one read: a whole predictor, old or new
                assert p.fitted
                assert len(p.predict_points(probe)) == len(probe)
                seen.add(id(p))
        except BaseException as e:
            failures.append(e)

    observers = [threading.Thread(target=observer, args=(k,)) for k in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in observers + readers:
        t.start()
    for t in observers:
        t.join(WAIT_S)
    # Every observer finished while the fit was still blocked: observe never waited on it.
    assert not any(t.is_alive() for t in observers) and not _Gated.gate.is_set()
    assert _Gated.active == [1, 1, 1] and bg.retrainer.completions == 200 + 8 * 200

    _Gated.gate.set()
    assert done.wait(WAIT_S)
    stop.set()
    for t in readers:
        t.join(WAIT_S)
    bg.close()
    assert not failures
    [event] = events
    assert event.error is None and event.swapped and event.completions == 200
    assert bg.predictor is not serving and bg.retrainer.version == 1
    assert seen <= {id(serving), id(bg.predictor)} and id(serving) in seen
    assert _Gated.active[1] == 1  # never two fits at once


def test_close_joins_the_running_job_and_takes_no_more() -> None:
    _Gated.gate, _Gated.entered, _Gated.active = threading.Event(), threading.Event(), [0, 0, 0]
    stream = traffic(40)
    serving = _Gated()
    InputLengthPredictor.fit(serving, [c.prompt for c in stream], [c.length for c in stream])
    events: list[RetrainEvent] = []
    bg = BackgroundRetrainer(
        Retrainer(serving, RetrainSettings(every=5, min_records=20, holdout=10)), events.append
    )
    for c in stream[:20]:
        bg.observe(c)
    assert _Gated.entered.wait(WAIT_S)
    closer = threading.Thread(target=bg.close)
    closer.start()
    _Gated.gate.set()
    closer.join(WAIT_S)
    assert not closer.is_alive() and len(events) == 1 and not bg.running
    for c in stream[20:]:
        bg.observe(Completion(c.prompt, c.model, c.length, c.censored))
    assert len(events) == 1 and _Gated.active[2] == 1


def test_a_failing_callback_does_not_stop_the_worker() -> None:
    stream = traffic(40)
    serving = InputLengthPredictor().fit([c.prompt for c in stream], [c.length for c in stream])
    calls: list[RetrainEvent] = []

    def on_event(e: RetrainEvent) -> None:
        calls.append(e)
        raise RuntimeError("callback bug")

    bg = BackgroundRetrainer(
        Retrainer(serving, RetrainSettings(every=10, min_records=20, holdout=10)), on_event
    )
    for c in stream[:20]:
        bg.observe(c)
    bg.close()  # joins the job that was started
    assert len(calls) == 1 and not bg.running
