"""Length predictions off the event loop: micro-batched, time-boxed, with a fallback.

Requests arriving within ``window`` of each other share one ``predict`` call,
run in a single worker thread (predictors need not be thread-safe). A request
whose prediction is not back within ``timeout`` — or whose batch raised — is
scheduled with the fallback estimate instead; its late result is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ssjf.estimate import LengthEstimate

log = logging.getLogger("ssjf.gateway")


class SupportsPredict(Protocol):
    """What the gateway needs of a predictor (ssjf.predict.Predictor satisfies it)."""

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]: ...


def load_predictor_dir(path: str) -> SupportsPredict:
    """``ssjf.predict.load_predictor(path)``, imported lazily (it may pull in torch)."""
    try:
        from ssjf.predict import load_predictor
    except ImportError as e:
        raise RuntimeError(
            f"cannot load predictor {path!r}: ssjf.predict is unavailable ({e}); "
            "install it with: pip install 'ssjf[predict]'"
        ) from e
    predictor: Any = load_predictor(path)
    return predictor


class PredictorRunner:
    """Async front of a predictor: ``await estimate(prompt, model)`` -> (estimate, source).

    ``source`` is ``"predictor"``, ``"timeout"`` or ``"error"`` so metrics and the
    traffic log can tell how each request was scheduled.
    """

    #: Batches allowed to wait for the worker before new requests skip the predictor:
    #: a predictor slower than the arrival rate must not build an unbounded backlog.
    MAX_BACKLOG = 4

    def __init__(
        self,
        predictor: SupportsPredict,
        *,
        window_s: float,
        max_batch: int,
        timeout_s: float,
        fallback_tokens: float,
    ) -> None:
        self.predictor = predictor
        self.window_s = window_s
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.fallback = LengthEstimate(point=fallback_tokens)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssjf-predict")
        self._pending: list[tuple[str, str | None, asyncio.Future[LengthEstimate]]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._backlog = 0
        #: Seconds per predict() call, for metrics (set by the app).
        self.on_batch: Any = None

    async def estimate(self, prompt: str, model: str | None) -> tuple[LengthEstimate, str]:
        """The predicted length of one request (never raises; falls back instead)."""
        if self._backlog >= self.MAX_BACKLOG:
            return self.fallback, "backlog"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[LengthEstimate] = loop.create_future()
        self._pending.append((prompt, model, fut))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(self.window_s, self._flush)
        try:
            est = await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError:
            return self.fallback, "timeout"
        except Exception:
            return self.fallback, "error"
        return est, "predictor"

    async def warm_up(self) -> float:
        """One prediction before serving; its seconds. Raises what the predictor raises.

        Predictors load their heavy parts on first use (a sentence encoder takes
        ~3 s to load on a CPU): without this, the first requests after a start
        would all time out into the fallback estimate, and the ones behind them
        into the backlog skip.
        """
        loop = asyncio.get_running_loop()
        models: list[str | None] = [None]
        t0 = time.perf_counter()
        await loop.run_in_executor(self._executor, self._predict, ["Warm-up: say hello."], models)
        return time.perf_counter() - t0

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        loop = asyncio.get_running_loop()
        self._backlog += 1
        prompts = [p for p, _, _ in batch]
        models = [m for _, m, _ in batch]
        cf = loop.run_in_executor(self._executor, self._predict, prompts, models)
        cf.add_done_callback(lambda f: self._deliver(f, batch))

    def _predict(self, prompts: list[str], models: list[str | None]) -> list[LengthEstimate]:
        t0 = time.perf_counter()
        out = self.predictor.predict(prompts, models)
        if len(out) != len(prompts):
            raise RuntimeError(
                f"predictor returned {len(out)} estimates for {len(prompts)} prompts"
            )
        if self.on_batch is not None:
            self.on_batch(time.perf_counter() - t0, len(prompts))
        return [LengthEstimate.of(e) for e in out]

    def _deliver(
        self,
        done: asyncio.Future[list[LengthEstimate]],
        batch: list[tuple[str, str | None, asyncio.Future[LengthEstimate]]],
    ) -> None:
        self._backlog -= 1
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if exc is not None:
            log.warning(
                "predictor failed on a batch of %d: %r; using the fallback", len(batch), exc
            )
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(RuntimeError(f"predictor failed: {exc!r}"))
                    fut.exception()  # mark retrieved: the waiter may have timed out already
            return
        for (_, _, fut), est in zip(batch, done.result(), strict=True):
            if not fut.done():
                fut.set_result(est)

    def close(self) -> None:
        """Stop the worker thread (pending predictions are abandoned)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
