"""A replay's results as ``vllm bench serve`` reports them: its result keys, its definitions.

So that ``ssjf bench serve`` figures can be set beside a ``vllm bench serve`` (or
guidellm) run without translating: the same names, in milliseconds, computed as
vLLM computes them (``vllm/benchmarks/serve.py``, ``calculate_metrics``):

* over *successful* requests only: ``completed``; ``failed`` is the rest;
* ``ttft``: first chunk carrying choices, from the send;
* ``e2el``: the stream's last data chunk (before ``[DONE]``), from the send (vLLM's
  chat client; its completions client stops one usage chunk earlier);
* ``tpot``: ``(e2el - ttft) / (output_tokens - 1)``, only for answers of 2+ tokens
  (the first token is not counted);
* ``itl``: the gaps between consecutive chunks carrying choices, pooled over all
  requests (a gap per *chunk*: with ``--stream-interval 8`` one gap spans 8 tokens);
* ``mean``, ``median``, ``std`` (population: numpy's ``np.std``) and each asked
  percentile (``pNN``, numpy's default linear interpolation, :func:`ssjf.stats.percentile`);
* throughputs over ``duration``: first send to the last request's end (failed ones
  included), or the duration given;
* ``max_concurrent_requests``: the peak of successful requests in flight, over
  half-open ``[send, send + e2el)`` intervals; ``max_output_tokens_per_s``: the most
  chunks carrying choices in one 1-second bucket from the first successful send
  (vLLM counts chunks there, not tokens).

Where this differs, and why: ``total_input_tokens`` sums the server's
``usage.prompt_tokens`` (vLLM sums its dataset's token counts, without the chat
template); a statistic with no values is NaN (``null`` in the JSON) where vLLM
writes 0 (e.g. TPOT when every answer is one token); a request whose answer
carried no usage counts no output tokens and has no TPOT (vLLM re-tokenizes its
text).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from ssjf.bench.serve.client import RequestResult
from ssjf.stats import mean, percentile

#: The latency metrics vLLM can report (its ``--percentile-metrics``); vLLM's own
#: default for generation leaves ``e2el`` out, this bench reports all four.
METRICS = ("ttft", "tpot", "itl", "e2el")


def percentile_key(p: float, metric: str) -> str:
    """vLLM's key for the ``p``-th percentile of ``metric``: ``p99_ttft_ms``, ``p99.9_itl_ms``."""
    word = str(int(p)) if int(p) == p else str(p)
    return f"p{word}_{metric}_ms"


def e2el(r: RequestResult) -> float:
    """End-to-end latency in seconds, to the last data chunk (to the end when none came)."""
    last = r.last_chunk if r.last_chunk is not None else r.end
    return last - r.sent


def request_values(r: RequestResult) -> dict[str, list[float]]:
    """One successful request's per-metric values, in seconds (``itl`` has one per gap)."""
    out: dict[str, list[float]] = {"ttft": [], "tpot": [], "itl": [], "e2el": [e2el(r)]}
    if r.ttft is not None:
        out["ttft"].append(r.ttft)
        n = r.completion_tokens
        if n is not None and n > 1:
            out["tpot"].append((e2el(r) - r.ttft) / (n - 1))
    times = r.chunk_times
    out["itl"] = [b - a for a, b in itertools.pairwise(times)]
    return out


def _summary(
    metric: str, values: Sequence[float], percentiles: Iterable[float]
) -> dict[str, float]:
    ms = [1e3 * v for v in values]
    out = {
        f"mean_{metric}_ms": mean(ms),
        f"median_{metric}_ms": percentile(ms, 50),
        f"std_{metric}_ms": statistics.pstdev(ms) if ms else math.nan,
    }
    for p in percentiles:
        out[percentile_key(p, metric)] = percentile(ms, p)
    return out


def peak_concurrency(ok: Sequence[RequestResult]) -> int:
    """Most requests in flight at once over half-open ``[send, send + e2el)`` intervals."""
    # An end sorts before a start at the same instant: back to back is not overlap.
    events = sorted([(r.sent, 1) for r in ok] + [(r.sent + e2el(r), -1) for r in ok])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def peak_chunks_per_s(ok: Sequence[RequestResult]) -> float:
    """vLLM's ``max_output_tokens_per_s``: the most choice chunks in one 1 s bucket."""
    if not ok:
        return 0.0
    start = min(r.sent for r in ok)
    buckets = math.ceil(max(r.sent + e2el(r) for r in ok) - start) + 1
    counts = [0] * buckets
    for r in ok:
        for t in r.chunk_times:
            b = int(t - start)
            if 0 <= b < buckets:
                counts[b] += 1
    return float(max(counts))


def vllm_metrics(
    results: Sequence[RequestResult],
    percentiles: Sequence[float] = (99.0,),
    metrics: Sequence[str] = METRICS,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """``vllm bench serve``'s result keys for one replay's ``results`` (see the module doc).

    ``duration_s`` replaces the replay's span (pooled replays: the sum of their spans).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: choose from {', '.join(METRICS)}")
    ok = [r for r in results if r.ok]
    if duration_s is None:
        duration_s = (
            max(r.end for r in results) - min(r.sent for r in results) if results else math.nan
        )
    total_in = sum(r.prompt_tokens or 0 for r in ok)
    total_out = sum(r.completion_tokens or 0 for r in ok)

    def per_s(x: float) -> float:
        return x / duration_s if duration_s and duration_s > 0 else math.nan

    out: dict[str, Any] = {
        "duration": duration_s,
        "completed": len(ok),
        "failed": len(results) - len(ok),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": per_s(len(ok)),
        "output_throughput": per_s(total_out),
        "total_token_throughput": per_s(total_in + total_out),
        "max_output_tokens_per_s": peak_chunks_per_s(ok),
        "max_concurrent_requests": peak_concurrency(ok),
    }
    pooled: dict[str, list[float]] = {m: [] for m in METRICS}
    for r in ok:
        for m, values in request_values(r).items():
            pooled[m] += values
    for m in metrics:
        out.update(_summary(m, pooled[m], percentiles))
    return out
