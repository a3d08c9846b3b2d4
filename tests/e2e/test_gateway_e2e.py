"""End to end: clients -> ssjf gateway -> a real vLLM (CPU build, tiny random Llama)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import ENGINE_SLOTS, Engine
from .helpers import (
    MODEL,
    PromptTagPredictor,
    completion,
    engine_gauge,
    sse_events,
    stream_lines,
    wait_until,
)

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
GENERATED = "vllm:generation_tokens_total"
#: The tiny model generates a few hundred (loaded machine) to several thousand (quiet
#: machine) tokens/s, so "short" requests are 600 tokens (one lasts longer than the
#: spread of their arrivals) and a long one is 64,000 (seconds even on a quiet
#: machine: it outlasts the setup around it, and the tests end it by disconnecting).
SHORT = 600
LONG = 64000


def test_engine_generates_exactly_max_tokens(engine: Engine) -> None:
    data = completion(engine.url, "Tell me about tides.", 7)
    assert data["usage"]["completion_tokens"] == 7


def test_gateway_plain_completion_and_chat(engine: Engine, start_gateway: Any) -> None:
    gw = start_gateway()
    data = completion(gw.url, "Name three rivers.", 13)
    assert data["usage"]["completion_tokens"] == 13
    assert data["model"] == MODEL
    assert isinstance(data["choices"][0]["text"], str)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 9,
        "ignore_eos": True,
    }
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 9
    assert r.json()["choices"][0]["message"]["role"] == "assistant"
    models = httpx.get(f"{gw.url}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_gateway_streams_pass_through_with_exact_lengths(start_gateway: Any) -> None:
    gw = start_gateway()
    # Completions stream, client did not ask for usage: the gateway asks on its
    # behalf (to learn the true length) and must strip that chunk again.
    body = {
        "model": MODEL,
        "prompt": "Count:",
        "max_tokens": 24,
        "ignore_eos": True,
        "stream": True,
    }
    events = sse_events(stream_lines(gw.url, "/v1/completions", body))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(not c.get("usage") for c in chunks)
    assert 1 <= sum(1 for c in chunks if c["choices"]) <= 24
    # Chat stream asking for usage: the final usage chunk reaches the client intact.
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a haiku."}],
        "max_tokens": 31,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = sse_events(stream_lines(gw.url, "/v1/chat/completions", body))
    assert events[-1] == "[DONE]"
    usage = [e["usage"] for e in events[:-1] if e.get("usage")]
    assert usage and usage[-1]["completion_tokens"] == 31
    # The gateway learned the true length from the engine's usage.
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert "ssjf_" in metrics


def _run_order(gw: Any, shorts: list[int], check_queued: Any) -> list[int]:
    """Occupy the engine's single slot with a long stream through gateway ``gw``, send
    short requests tagged with predicted lengths ``shorts`` (in that arrival order: each
    is sent once the gateway holds the one before), check they are queued,
    then end the long one by disconnecting; return the tags in the order they started
    generating (one slot: one at a time). Nothing here depends on how fast the machine is.

    The long request is tagged ``len=0`` so it is first in any queue even if it
    reached the engine after a short one.
    """
    url = gw.url
    dispatcher = gw.gateway.dispatcher
    waits: list[tuple[float, int]] = []

    def short(tag: int) -> None:
        r = httpx.post(
            f"{url}/v1/completions",
            json={"model": MODEL, "prompt": f"short len={tag}", "max_tokens": SHORT}
            | {"ignore_eos": True},
            timeout=600,
        )
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["usage"]["completion_tokens"] == SHORT
        # Time queued before generating: in the gateway plus in the engine (the
        # engine's own timing). All shorts were queued when the slot freed and they
        # arrived closer together than one short's service time, so the order of
        # their waits is their service order, whenever a loaded machine delivers them.
        gw_wait = float(r.headers.get("x-ssjf-queue-wait-ms", 0.0))
        waits.append((gw_wait + data["metrics"]["queue_time_ms"], tag))

    body = {
        "model": MODEL,
        "prompt": "long len=0",
        "max_tokens": LONG,
        "ignore_eos": True,
        "stream": True,
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = []
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=600) as r:
            assert r.status_code == 200
            # Keep the iterator referenced: a finalized iterator closes the stream.
            lines = r.iter_lines()
            while not next(lines).startswith("data:"):
                pass  # until the long request generates: it holds the slot
            for k, n in enumerate(shorts):
                futs.append(pool.submit(short, n))
                # Arrival order is the list order: the next one leaves once the gateway
                # holds this one (forwarded or queued, with the long one: k + 2).
                wait_until(
                    lambda k=k: dispatcher.in_flight + dispatcher.queue_len == k + 2,
                    60,
                    f"short request {n} at the gateway",
                    lambda: f"in_flight={dispatcher.in_flight} queued={dispatcher.queue_len}",
                )
            check_queued()
        # Leaving the block closed the long stream: the slot frees, the shorts run.
        for f in futs:
            f.result(timeout=600)
    return [tag for _, tag in sorted(waits)]


@pytest.mark.engine_order
def test_vllm_priority_reorders_the_engine_queue(engine: Engine, start_gateway: Any) -> None:
    """Backend vllm, no gateway queue: the engine's waiting queue follows the priorities."""
    shorts = [50, 30, 10, 40]
    gws: list[Any] = []

    def check() -> None:
        # Forwarded at once (no gateway queue): the long one and all shorts are with
        # the engine, which has one slot, so the shorts wait in its queue.
        dispatcher = gws[-1].gateway.dispatcher
        wait_until(lambda: dispatcher.in_flight == 1 + len(shorts), 10, "all forwarded")
        assert dispatcher.queue_len == 0
        # The engine's API server may be slow to hand them to its scheduler on a
        # loaded machine: release the long one only once all four wait there.
        wait_until(lambda: engine_gauge(engine.url, WAITING) == len(shorts), 60, "engine queue")

    # The requests force their lengths with ignore_eos (the engine then generates
    # max_tokens whatever the prompt): reading that would tie every short at the same
    # estimate, so the gateway schedules on the predictor's tags alone (as bench serve).
    gws.append(start_gateway(predictor=PromptTagPredictor(), cap_estimate_by_max_tokens=False))
    # Arrival order is 50, 30, 10, 40: serving 10, 30, 40, 50 is the priorities' doing.
    # (Without priorities the engine's order among requests arriving one after another
    # is not reliable on a loaded machine: its API server hands them over in bursts.)
    assert _run_order(gws[-1], shorts, check) == sorted(shorts)


@pytest.mark.engine_order
def test_gateway_held_queue_releases_in_policy_order(engine: Engine, start_gateway: Any) -> None:
    """max_in_flight = engine slots: requests wait in the gateway, shortest predicted first."""
    shorts = [50, 30, 10, 40]
    # Plain ssjf: the default policy's tail budget would (rightly) let the first arrival
    # keep its place in so short a queue; this test is about the policy's order.
    gw = start_gateway(
        predictor=PromptTagPredictor(),
        max_in_flight=ENGINE_SLOTS,
        cap_estimate_by_max_tokens=False,
        policy="ssjf",
    )

    def check() -> None:
        wait_until(lambda: gw.gateway.dispatcher.queue_len == len(shorts), 10, "gateway queue")
        # Held at the gateway: the engine runs the long one and has nothing waiting.
        assert gw.gateway.dispatcher.in_flight == ENGINE_SLOTS
        assert engine_gauge(engine.url, WAITING) == 0

    assert _run_order(gw, shorts, check) == sorted(shorts)


def test_disconnect_frees_the_slot_and_aborts_the_engine_request(
    engine: Engine, start_gateway: Any
) -> None:
    gw = start_gateway(max_in_flight=1)
    body = {
        "model": MODEL,
        "prompt": "A long story:",
        "max_tokens": LONG,
        "ignore_eos": True,
        "stream": True,
    }
    generated_before = engine_gauge(engine.url, GENERATED)
    with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data:")
            if seen >= 5:
                break
    # The slot and the engine's sequence go (promptly; 30 s only because a loaded 2-core
    # host can stall any process for seconds): the gateway closed the upstream
    # stream, so the engine aborted the request instead of generating all its tokens.
    wait_until(
        lambda: gw.gateway.dispatcher.in_flight == 0,
        30,
        "gateway slot freed",
        lambda: (
            f"in_flight={gw.gateway.dispatcher.in_flight} queued={gw.gateway.dispatcher.queue_len}"
        ),
    )
    wait_until(lambda: engine_gauge(engine.url, RUNNING) == 0, 30, "engine request aborted")
    data = completion(gw.url, "next", 5)
    assert data["usage"]["completion_tokens"] == 5
    assert engine_gauge(engine.url, GENERATED) - generated_before < LONG

    # A request still queued at the gateway is dropped when its client leaves.
    with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=60) as long:
        assert long.status_code == 200
        lines = long.iter_lines()  # keep it referenced: a finalized iterator closes it
        while not next(lines).startswith("data:"):
            pass  # the long request generates: it holds the gateway's one slot
        assert gw.gateway.dispatcher.in_flight == 1
        try:
            r = httpx.post(
                f"{gw.url}/v1/completions",
                json={"model": MODEL, "prompt": "x", "max_tokens": 5, "ignore_eos": True},
                timeout=httpx.Timeout(60, read=0.5),
            )
            raise AssertionError(f"the queued request should still be waiting: {r.text}")
        except httpx.ReadTimeout:
            pass
        wait_until(
            lambda: gw.gateway.dispatcher.queue_len == 0,
            30,
            "queued request dropped",
            lambda: (
                f"in_flight={gw.gateway.dispatcher.in_flight} queued={gw.gateway.dispatcher.queue_len}"
            ),
        )
    wait_until(
        lambda: gw.gateway.dispatcher.in_flight == 0,
        30,
        "gateway slot freed again",
        lambda: (
            f"in_flight={gw.gateway.dispatcher.in_flight} queued={gw.gateway.dispatcher.queue_len}"
        ),
    )
