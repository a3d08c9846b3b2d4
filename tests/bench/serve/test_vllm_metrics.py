"""``vllm bench serve``'s result keys from the bench's own per-request records.

The expected values are worked out by hand (in the comments) from vLLM's
definitions (``vllm/benchmarks/serve.py``, ``calculate_metrics``); a fuzz test
checks the function against a transcription of that code on random records.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.serve.client import RequestResult, make_client, send_one
from ssjf.bench.serve.items import WorkItem
from ssjf.bench.serve.vllm_metrics import METRICS, percentile_key, vllm_metrics
from tests.gateway.fake_upstream import FakeEngine, ServerThread


def _ok(
    sent: float, chunks: list[float], last: float, out: int, prompt: int, end: float
) -> RequestResult:
    return RequestResult(
        id=f"r{sent}",
        max_tokens=out,
        sent=sent,
        end=end,
        first_token=chunks[0],
        ok=True,
        completion_tokens=out,
        prompt_tokens=prompt,
        chunk_times=chunks,
        last_chunk=last,
    )


#: A: ttft 0.5, e2el 2.5 (to its usage chunk, not its end at 2.6), tpot (2.5-0.5)/5 = 0.4,
#:    itl 0.5 and 1.0.  B: ttft 0.25, e2el 1.0, tpot 0.75/1, itl 0.5.
#: C: one token: ttft 0.1, e2el 0.2, no tpot, no itl.  D: failed (counted in duration).
RECORDS = [
    _ok(0.0, [0.5, 1.0, 2.0], last=2.5, out=6, prompt=10, end=2.6),
    _ok(1.0, [1.25, 1.75], last=2.0, out=2, prompt=4, end=2.1),
    _ok(1.5, [1.6], last=1.7, out=1, prompt=3, end=1.8),
    RequestResult(id="d", max_tokens=5, sent=2.0, end=3.0, ok=False, error="boom"),
]


def test_hand_computed_keys() -> None:
    got = vllm_metrics(RECORDS)
    expected = {
        "duration": 3.0,  # first send 0.0 to the failed request's end 3.0
        "completed": 3,
        "failed": 1,
        "total_input_tokens": 17,
        "total_output_tokens": 9,
        "request_throughput": 1.0,
        "output_throughput": 3.0,
        "total_token_throughput": 26 / 3,
        # Chunks at 1.0, 1.25, 1.75, 1.6 fall in second 1.
        "max_output_tokens_per_s": 4.0,
        # [0, 2.5), [1, 2), [1.5, 1.7) all open at 1.5.
        "max_concurrent_requests": 3,
        # TTFT 500, 250, 100 ms; p99 at rank 1.98: 250 + 0.98 * 250.
        "mean_ttft_ms": 850 / 3,
        "median_ttft_ms": 250.0,
        "std_ttft_ms": math.sqrt(245_000) / 3,  # population std: E[x^2] - mean^2 = 245000/9
        "p99_ttft_ms": 495.0,
        # TPOT 400, 750 ms (C has one token: none); p99 at rank 0.99.
        "mean_tpot_ms": 575.0,
        "median_tpot_ms": 575.0,
        "std_tpot_ms": 175.0,
        "p99_tpot_ms": 400 + 0.99 * 350,
        # ITL 500, 1000, 500 ms pooled over requests.
        "mean_itl_ms": 2000 / 3,
        "median_itl_ms": 500.0,
        "std_itl_ms": math.sqrt(500_000) / 3,
        "p99_itl_ms": 990.0,
        # E2EL 2500, 1000, 200 ms.
        "mean_e2el_ms": 3700 / 3,
        "median_e2el_ms": 1000.0,
        "std_e2el_ms": math.sqrt(8_180_000) / 3,
        "p99_e2el_ms": 2470.0,
    }
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v), k


def test_percentiles_metrics_and_duration_are_chosen() -> None:
    got = vllm_metrics(RECORDS, percentiles=(50, 99.9), metrics=("ttft",), duration_s=6.0)
    assert "mean_e2el_ms" not in got and "p99_ttft_ms" not in got
    assert got["p50_ttft_ms"] == pytest.approx(250.0)
    assert got["p99.9_ttft_ms"] == pytest.approx(250 + 0.998 * 250)
    assert got["request_throughput"] == pytest.approx(0.5)  # 3 completed over 6 s
    assert percentile_key(99.0, "itl") == "p99_itl_ms"
    with pytest.raises(ValueError, match="unknown metrics"):
        vllm_metrics(RECORDS, metrics=("ttft", "latency"))


def test_no_values_give_nan_not_zero() -> None:
    only_failed = vllm_metrics(RECORDS[3:])
    assert (only_failed["completed"], only_failed["failed"]) == (0, 1)
    assert only_failed["request_throughput"] == 0.0
    assert math.isnan(only_failed["mean_ttft_ms"]) and math.isnan(only_failed["std_e2el_ms"])
    one_token = vllm_metrics([RECORDS[2]])
    assert math.isnan(one_token["mean_tpot_ms"]) and math.isnan(one_token["p99_itl_ms"])
    assert one_token["std_ttft_ms"] == 0.0
    empty = vllm_metrics([])
    assert empty["completed"] == 0 and math.isnan(empty["duration"])


# --- against a transcription of vLLM's calculate_metrics -----------------------------


def _vllm_reference(results: list[RequestResult], ps: list[float]) -> dict[str, Any]:
    """vLLM's loop over its RequestFuncOutputs (latency, ttft, itl, output_tokens)."""
    ttfts, tpots, itls, e2els = [], [], [], []
    for r in results:
        if not r.ok:
            continue
        latency = (r.last_chunk or r.end) - r.sent
        ttft = (r.first_token or r.sent) - r.sent
        itl = [b - a for a, b in itertools.pairwise(r.chunk_times)]
        n = r.completion_tokens or 0
        if n > 1:
            tpots.append((latency - ttft) / (n - 1))
        itls += itl
        ttfts.append(ttft)
        e2els.append(latency)
    out: dict[str, Any] = {}
    for name, xs in (("ttft", ttfts), ("tpot", tpots), ("itl", itls), ("e2el", e2els)):
        if not xs:  # vLLM writes 0 here; the bench writes NaN (checked above)
            continue
        out[f"mean_{name}_ms"] = np.mean(xs) * 1000
        out[f"median_{name}_ms"] = np.median(xs) * 1000
        out[f"std_{name}_ms"] = np.std(xs) * 1000
        for p in ps:
            out[percentile_key(p, name)] = np.percentile(xs, p) * 1000
    return out


@st.composite
def _results(draw: st.DrawFn) -> list[RequestResult]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        sent = draw(st.floats(0, 50))
        if not draw(st.booleans()) and i:
            out.append(RequestResult(id=str(i), max_tokens=1, sent=sent, end=sent + 1, ok=False))
            continue
        gaps = draw(st.lists(st.floats(1e-4, 3), min_size=1, max_size=20))
        chunks = list(itertools.accumulate(gaps, initial=sent))[1:]
        last = chunks[-1] + draw(st.floats(0, 0.01))
        n = draw(st.integers(1, 4 * len(chunks)))
        out.append(_ok(sent, chunks, last, n, draw(st.integers(0, 99)), last + 0.001))
    return out


@given(results=_results(), ps=st.lists(st.floats(0, 100), min_size=1, max_size=3))
@settings(max_examples=60, deadline=None)
def test_matches_vllm_calculate_metrics(results: list[RequestResult], ps: list[float]) -> None:
    got = vllm_metrics(results, percentiles=ps)
    for k, v in _vllm_reference(results, ps).items():
        assert got[k] == pytest.approx(float(v), rel=1e-9, abs=1e-9), k


# --- the client records what the keys need -------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_client_records_chunk_times_and_prompt_tokens(endpoint: str) -> None:
    server = ServerThread(FakeEngine(token_delay=0.001).app()).start()

    async def go() -> RequestResult:
        async with make_client() as client:
            item = WorkItem(id="a", prompt="hi", max_tokens=5)
            return await send_one(client, server.url, item, "fake", endpoint)

    try:
        r = asyncio.run(go())
    finally:
        server.stop(force=True)
    assert r.ok and r.completion_tokens == 5 and r.prompt_tokens == 3
    # The fake engine streams one chunk per token, then a usage chunk without choices.
    assert len(r.chunk_times) == 5 and r.chunks == 6
    assert r.chunk_times[0] == r.first_token
    assert r.chunk_times == sorted(r.chunk_times)
    assert r.last_chunk is not None and r.chunk_times[-1] <= r.last_chunk <= r.end
    keys = vllm_metrics([r])
    assert keys["completed"] == 1 and keys["total_output_tokens"] == 5
    assert all(f"mean_{m}_ms" in keys for m in METRICS)
