"""Predictions are micro-batched off the event loop, and fall back when slow or broken."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ssjf.estimate import LengthEstimate
from ssjf.gateway.predictor_runner import PredictorRunner

from .helpers import FakePredictor


def _runner(predictor, **kw) -> PredictorRunner:
    opts = {"window_s": 0.01, "max_batch": 64, "timeout_s": 1.0, "fallback_tokens": 77.0}
    opts.update(kw)
    return PredictorRunner(predictor, **opts)


def test_burst_shares_one_batch_off_the_loop():
    pred = FakePredictor()
    threads: list[str] = []
    orig = pred.predict

    def predict(prompts, models=None):
        threads.append(threading.current_thread().name)
        return orig(prompts, models)

    pred.predict = predict  # type: ignore[method-assign]
    runner = _runner(pred)

    async def run():
        return await asyncio.gather(*(runner.estimate(f"len={n}", None) for n in range(1, 11)))

    out = asyncio.run(run())
    runner.close()
    assert [e.point for e, _ in out] == [float(n) for n in range(1, 11)]
    assert all(src == "predictor" for _, src in out)
    assert pred.calls == [10]
    assert threads and all(t.startswith("ssjf-predict") for t in threads)


def test_max_batch_splits():
    pred = FakePredictor()
    runner = _runner(pred, max_batch=4)

    async def run():
        return await asyncio.gather(*(runner.estimate("len=3", None) for _ in range(10)))

    asyncio.run(run())
    runner.close()
    assert sorted(pred.calls) == [2, 4, 4]


class Slow:
    def predict(self, prompts, models=None):
        time.sleep(0.3)
        return [LengthEstimate(point=1.0) for _ in prompts]


class Broken:
    def predict(self, prompts, models=None):
        raise RuntimeError("boom")


def test_timeout_and_errors_fall_back():
    slow = _runner(Slow(), timeout_s=0.05)
    broken = _runner(Broken())

    async def run():
        t0 = time.perf_counter()
        est, src = await slow.estimate("x", None)
        waited = time.perf_counter() - t0
        est2, src2 = await broken.estimate("y", None)
        return est, src, waited, est2, src2

    est, src, waited, est2, src2 = asyncio.run(run())
    slow.close()
    broken.close()
    assert (est.point, src) == (77.0, "timeout") and waited < 0.25
    assert (est2.point, src2) == (77.0, "error")


def test_backlog_skips_the_predictor():
    runner = _runner(Slow(), timeout_s=0.01, window_s=0.0, max_batch=1)

    async def run():
        return await asyncio.gather(*(runner.estimate("x", None) for _ in range(12)))

    out = asyncio.run(run())
    runner.close()
    sources = [s for _, s in out]
    assert sources.count("backlog") >= 12 - PredictorRunner.MAX_BACKLOG
    assert all(e.point == 77.0 for e, _ in out)


class LoadsOnFirstUse:
    """Like an encoder predictor: the first call loads the model (slow), later ones are fast."""

    def __init__(self, load_s: float) -> None:
        self.load_s = load_s
        self.loaded = False
        self.prompts: list[str] = []

    def predict(self, prompts, models=None):
        if not self.loaded:
            time.sleep(self.load_s)
            self.loaded = True
        self.prompts += prompts
        return [LengthEstimate(point=42.0) for _ in prompts]


def _gateway(predictor):
    from ssjf.gateway.app import Gateway
    from ssjf.gateway.config import load_config

    # 0.5 s: ample for a loaded prediction on a busy CI machine, well short of a load.
    cfg = load_config(None, {"upstreams": ["http://127.0.0.1:9"], "predictor_timeout_ms": 500})
    return Gateway(cfg, predictor=predictor)


def test_gateway_start_warms_the_predictor_so_first_requests_are_predicted():
    pred = LoadsOnFirstUse(load_s=1.0)
    cold = _runner(LoadsOnFirstUse(load_s=1.0), timeout_s=0.5)

    async def run():
        # Without a warm-up, the first request pays the load and falls back.
        _, cold_src = await cold.estimate("x", None)
        gw = _gateway(pred)
        await gw.start()
        try:
            assert gw.runner is not None
            first = await gw.runner.estimate("first request", None)
        finally:
            await gw.stop()
        return cold_src, first

    cold_src, (est, src) = asyncio.run(run())
    cold.close()
    assert cold_src == "timeout"
    assert (est.point, src) == (42.0, "predictor")
    assert pred.prompts[0].startswith("Warm-up") and pred.prompts[1:] == ["first request"]


def test_gateway_refuses_to_start_with_a_predictor_that_cannot_predict():
    async def run():
        gw = _gateway(Broken())
        try:
            await gw.start()
        finally:
            await gw.stop()

    with pytest.raises(RuntimeError, match=r"warm-up.*boom"):
        asyncio.run(run())
