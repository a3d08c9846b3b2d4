"""The load generator's engine-timed latency: the engine's own per-request timings
(vLLM --enable-per-request-metrics) plus the gateway's queue wait."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest

from ssjf.bench.serve.client import RequestResult, make_client, send_one
from ssjf.bench.serve.figures import (
    engine_busy_tokens_per_s,
    engine_full_tokens_per_s,
    engine_timed_jct,
    summarize,
)
from ssjf.bench.serve.items import WorkItem

from .conftest import RunningGateway
from .fake_upstream import FakeEngine, ServerThread


def _res(extra: dict[str, object], ok: bool = True) -> RequestResult:
    r = RequestResult(id="r", max_tokens=4, sent=0.0, end=9.0, ok=ok, completion_tokens=4)
    r.extra.update(extra)
    return r


def test_engine_timed_jct_adds_the_phases_and_the_gateway_wait() -> None:
    m = {"queue_time_ms": 100.0, "time_to_first_token_ms": 20.0, "generation_time_ms": 380.0}
    assert engine_timed_jct(_res({"engine_metrics": m})) == pytest.approx(0.5)
    both = {"engine_metrics": m, "gateway_wait_ms": 250.0}
    assert engine_timed_jct(_res(both)) == pytest.approx(0.75)
    one_token = {"queue_time_ms": 5.0, "time_to_first_token_ms": 5.0}  # no generation phase
    assert engine_timed_jct(_res({"engine_metrics": one_token})) == pytest.approx(0.01)
    assert engine_timed_jct(_res({})) is None  # the engine did not report timings
    assert engine_timed_jct(_res({"engine_metrics": {"queue_time_ms": 1.0}})) is None
    assert engine_timed_jct(_res({"engine_metrics": m}, ok=False)) is None
    # The mean is only given when every completed request has its timings.
    assert math.isnan(summarize([_res({"engine_metrics": m}), _res({})]).engine_jct_mean)
    assert summarize([_res({"engine_metrics": m})]).engine_jct_mean == pytest.approx(0.5)


def _served(start: float, end: float, tokens: int, ok: bool = True) -> RequestResult:
    """A request whose engine service (first token + generation) spans [start, end]."""
    r = RequestResult(id="r", max_tokens=tokens, sent=0.0, end=end, ok=ok)
    r.completion_tokens = tokens
    r.extra["engine_metrics"] = {
        "queue_time_ms": 1.0,
        "time_to_first_token_ms": 10.0,
        "generation_time_ms": (end - start) * 1e3 - 10.0,
    }
    return r


def test_engine_busy_rate_is_tokens_over_the_union_of_service_intervals() -> None:
    # Services [1, 3] and [2, 4] overlap (busy 3 s), [10, 11] is apart (1 s): 4 s busy.
    results = [_served(1.0, 3.0, 100), _served(2.0, 4.0, 100), _served(10.0, 11.0, 200)]
    assert engine_busy_tokens_per_s(results) == pytest.approx(400 / 4.0)
    # An interval inside another adds no busy time; failed or untimed requests are left out.
    inner = _served(3.0, 3.5, 40)
    untimed = RequestResult(id="u", max_tokens=9, sent=0.0, end=20.0, ok=True, completion_tokens=9)
    failed = _served(29.0, 30.0, 50, ok=False)
    assert engine_busy_tokens_per_s([*results, inner, untimed, failed]) == pytest.approx(440 / 4.0)
    assert math.isnan(engine_busy_tokens_per_s([untimed]))


def test_full_slots_rate_counts_only_the_time_every_slot_was_busy() -> None:
    # [0, 3] and [1, 4], 220 tokens each, spread evenly over their spans (73.3
    # tokens/s apiece): both slots busy during [1, 3] only, at 2 x 73.3 tokens/s.
    a = _served(0.0, 3.0, 220)
    b = _served(1.0, 4.0, 220)
    assert engine_full_tokens_per_s([a, b], slots=2) == pytest.approx(2 * 220 / 3)
    # One slot: all 4 busy seconds count, 440 tokens; the busy rate agrees.
    assert engine_full_tokens_per_s([a, b], slots=1) == pytest.approx(440 / 4)
    assert engine_busy_tokens_per_s([a, b]) == pytest.approx(440 / 4)
    # A request ending exactly when another starts does not overlap it.
    c, d = _served(10.0, 11.0, 50), _served(11.0, 12.0, 50)
    assert math.isnan(engine_full_tokens_per_s([c, d], slots=2))
    # Three at once with two slots: the full-occupancy time is the 3-way overlap
    # plus the 2-way parts.
    e, f, g = _served(0.0, 2.0, 200), _served(0.0, 2.0, 200), _served(1.0, 2.0, 50)
    assert engine_full_tokens_per_s([e, f, g], slots=2) == pytest.approx(450 / 2)
    with pytest.raises(ValueError, match="slots"):
        engine_full_tokens_per_s([a], slots=0)


def test_client_reads_engine_timings_and_the_gateway_queue_wait(
    start_gateway: Callable[..., RunningGateway],
) -> None:
    fake = FakeEngine(token_delay=0.01, per_request_metrics=True)
    server = ServerThread(fake.app()).start()
    try:
        # One request in flight at a time: the second waits in the gateway's queue.
        gw = start_gateway(upstreams=[server.url], backend="fifo", max_in_flight=1)
        items = [WorkItem(id=str(i), prompt=f"p{i}", max_tokens=20) for i in range(2)]

        async def go() -> list[RequestResult]:
            async with make_client() as client:
                return list(
                    await asyncio.gather(
                        *(send_one(client, gw.url, it, "fake", "completions") for it in items)
                    )
                )

        results = asyncio.run(go())
        assert all(r.ok for r in results)
        for r in results:
            assert set(r.extra["engine_metrics"]) >= {"queue_time_ms", "generation_time_ms"}
            assert "gateway_wait_ms" in r.extra
        waits = sorted(float(r.extra["gateway_wait_ms"]) for r in results)
        assert waits[0] < 50.0 < waits[1]  # the second waited for the first (~200 ms)
        for r in results:
            t = engine_timed_jct(r)
            assert t is not None and 0.15 < t <= r.jct + 1e-3
    finally:
        server.stop(force=True)
