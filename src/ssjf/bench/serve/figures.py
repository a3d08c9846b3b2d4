"""What ``ssjf bench serve`` reports: latency summaries of a replay (JCT mean and
percentiles, TTFT, throughput, the engine's own speed), one figure row per replay,
one row per config over every seed, and the comparison with FCFS.

Means and percentiles come from :mod:`ssjf.stats`, the rule every report uses.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ssjf.bench.serve.client import RequestResult
from ssjf.stats import mean, percentile, relative_change


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """What one replay measured; seconds unless named otherwise."""

    n: int
    ok: int
    errors: int
    jct_mean: float
    jct_p50: float
    jct_p99: float
    ttft_mean: float
    #: Completed requests divided by the span from the first send to the last answer.
    throughput_rps: float
    #: Fraction of completed requests whose completion_tokens equals what was asked.
    exact_tokens: float
    #: Mean of :func:`engine_timed_jct` (NaN unless every completed request has it).
    engine_jct_mean: float = math.nan


#: vLLM's per-request metrics that add up to its time from queued to last token.
_ENGINE_PHASES = ("queue_time_ms", "time_to_first_token_ms", "generation_time_ms")


def engine_timed_jct(r: RequestResult) -> float | None:
    """Latency from the engine's own clocks plus the gateway's queue wait, in seconds.

    ``queue + time to first token + generation`` from vLLM's per-request metrics
    (``--enable-per-request-metrics``), plus the ssjf gateway's queue wait when the
    request went through a gateway that held it. What is left out is the HTTP path:
    on a CPU-starved host the engine's API server delivers streams in bursts
    (docs/bench_serve.md), which the client-side JCT includes and this does not.
    None when the engine did not report its timings.
    """
    m = r.extra.get("engine_metrics")
    if not r.ok or not isinstance(m, dict):
        return None
    queue, first, gen = (m.get(k) for k in _ENGINE_PHASES)
    if not isinstance(queue, int | float) or not isinstance(first, int | float):
        return None
    # One-token answers have no generation phase: vLLM leaves it out.
    total_ms = float(queue) + float(first) + (float(gen) if isinstance(gen, int | float) else 0.0)
    return (total_ms + float(r.extra.get("gateway_wait_ms", 0.0))) / 1e3


def engine_busy_tokens_per_s(results: Sequence[RequestResult]) -> float:
    """Tokens generated per second of engine busy time: the engine's speed in a replay.

    Each request's service (prefill + decode, from vLLM's per-request metrics) is
    placed on the client's clock ending when its answer ended; busy time is the
    union of those intervals. At the same offered load every config keeps up and
    so shows the same overall tokens/s; this shows how fast the engine itself ran
    during one replay. On the 2-vCPU VM it varied by up to 20% between replays of
    one seed, which at 0.9 load moves the queueing delay more than a policy does
    (host drift or an effect of the policy: not settled, docs/bench_serve.md).
    NaN when the engine did not report its timings.
    """
    spans = _service_spans(results)
    tokens = sum(n for _, _, n in spans)
    busy, reach = 0.0, -math.inf
    for start, end, _ in sorted(spans):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return tokens / busy if busy > 0 else math.nan


def _service_spans(results: Sequence[RequestResult]) -> list[tuple[float, float, int]]:
    """(start, end, tokens) of each timed request's service (prefill + decode) on the
    client's clock: vLLM's per-request metrics, placed to end when its answer ended."""
    spans: list[tuple[float, float, int]] = []
    for r in results:
        m = r.extra.get("engine_metrics")
        if not r.ok or not isinstance(m, dict):
            continue
        first, gen = m.get("time_to_first_token_ms"), m.get("generation_time_ms", 0.0)
        if not isinstance(first, int | float) or not isinstance(gen, int | float):
            continue
        spans.append((r.end - (float(first) + float(gen)) / 1e3, r.end, r.completion_tokens or 0))
    return spans


def engine_full_tokens_per_s(results: Sequence[RequestResult], slots: int) -> float:
    """Tokens per second while at least ``slots`` requests were in service at once.

    The capacity probe measures the engine with every slot busy; in a replay the
    engine also spends time with fewer (1 of 2 slots: about two thirds of the
    tokens/s on the CPU engine), so the busy speed above mixes both and reads
    lower. This is the replay's speed at full occupancy, the one to hold the
    offered load against: how loaded the replay really was in the probe's terms.
    Each request's tokens are spread evenly over its service span. NaN when the
    replay never had ``slots`` requests in service, or the engine reported no timings.
    """
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    # Sweep the span ends in time order (an end before a start at the same moment:
    # back-to-back requests do not overlap), keeping the in-service count and rate.
    events: list[tuple[float, int, float]] = []
    for a, b, n in _service_spans(results):
        if b > a:
            events += [(a, 1, n / (b - a)), (b, -1, n / (b - a))]
    events.sort(key=lambda e: (e[0], e[1]))
    active, rate = 0, 0.0
    full_time = full_tokens = 0.0
    last = -math.inf
    for t, step, r in events:
        if active >= slots:
            full_time += t - last
            full_tokens += (t - last) * rate
        last = t
        active += step
        rate += step * r
    return full_tokens / full_time if full_time > 0 else math.nan


def summarize(results: Sequence[RequestResult]) -> LatencySummary:
    """Summarize a replay's results (latencies over successful requests only)."""
    ok = [r for r in results if r.ok]
    jct = [r.jct for r in ok]
    ttft = [r.ttft for r in ok if r.ttft is not None]
    span = 0.0
    if ok:
        span = max(r.end for r in ok) - min(r.sent for r in results)
    exact = [r for r in ok if r.completion_tokens == r.max_tokens]
    engine = [engine_timed_jct(r) for r in ok]
    engine_ok = [x for x in engine if x is not None]
    return LatencySummary(
        n=len(results),
        ok=len(ok),
        errors=len(results) - len(ok),
        jct_mean=mean(jct),
        jct_p50=percentile(jct, 50),
        jct_p99=percentile(jct, 99),
        ttft_mean=mean(ttft),
        throughput_rps=len(ok) / span if span > 0 else math.nan,
        exact_tokens=len(exact) / len(ok) if ok else math.nan,
        engine_jct_mean=mean(engine_ok) if ok and len(engine_ok) == len(ok) else math.nan,
    )


def run_figures(
    seed: int, results: Sequence[RequestResult], offered_tokens_per_s: float, slots: int
) -> dict[str, Any]:
    """One config's replay for one seed: its summary and the engine's token rate."""
    sm = summarize(results)
    ok = [r for r in results if r.ok]
    span = max(r.end for r in ok) - min(r.sent for r in results) if ok else math.nan
    tokens = sum(r.completion_tokens or 0 for r in ok)
    busy = engine_busy_tokens_per_s(results)
    full = engine_full_tokens_per_s(results, slots)
    return {
        "seed": seed,
        "jct_mean": sm.jct_mean,
        "jct_p99": sm.jct_p99,
        "ttft_mean": sm.ttft_mean,
        "engine_jct_mean": sm.engine_jct_mean,
        "throughput_rps": sm.throughput_rps,
        # Tokens over the whole replay (idle gaps included): shows a drift in the
        # machine's speed from one replay to the next, at the same offered load.
        "tokens_per_s": tokens / span if span > 0 else math.nan,
        # Generated / offered tokens per second. A replay that kept up ends just
        # below 1 (its drain counts); well below 1 it ran past capacity, and its
        # latencies measure how far, more than the policy.
        "kept_up": tokens / span / offered_tokens_per_s if span > 0 else math.nan,
        # The engine's own speed while busy in this replay (engine metrics): compare it
        # across the configs of one seed before reading their latencies.
        "engine_busy_tokens_per_s": busy,
        # Offered tokens/s over that speed: the load this replay really ran at. The
        # arrivals are set from the capacity probe; if the machine ran slower or
        # faster during the replay, this moves (and queueing delay with it, steeply
        # near 1).
        "effective_load": offered_tokens_per_s / busy if busy > 0 else math.nan,
        # The engine's speed while every slot was busy, as the capacity probe runs it,
        # and the offered load against that: the replay's load in the probe's terms.
        # Side by side it can exceed the probe's figure (an engine gets more of the
        # shared CPU while another is idle), and then the replay ran below ``load``.
        "engine_full_tokens_per_s": full,
        "load_at_full_speed": offered_tokens_per_s / full if full > 0 else math.nan,
        "ok": sm.ok,
        "errors": sm.errors,
    }


def config_row(
    name: str, results: Sequence[RequestResult], runs: list[dict[str, Any]], added_ms: float
) -> dict[str, Any]:
    """One config over every seed: pooled latencies, mean per-replay throughput."""
    s = summarize(results)
    tput = [r["throughput_rps"] for r in runs]
    return {
        "config": name,
        "jct_mean": s.jct_mean,
        "jct_p50": s.jct_p50,
        "jct_p99": s.jct_p99,
        "ttft_mean": s.ttft_mean,
        # The engine's clocks + the gateway's queue wait, without the HTTP delivery
        # (see engine_timed_jct); NaN without per-request metrics.
        "engine_jct_mean": s.engine_jct_mean,
        "throughput_rps": sum(tput) / len(tput) if tput else math.nan,
        # The worst replay's generated / offered tokens (see run_figures).
        "kept_up_min": min((r["kept_up"] for r in runs), default=math.nan),
        "added_latency_p50_ms": added_ms,
        "ok": s.ok,
        "errors": s.errors,
        "exact_tokens": s.exact_tokens,
        "runs": runs,
    }


def compare_to_fcfs(rows: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    """Add each row's change against the first row (FCFS), pooled and paired by seed."""
    fcfs = rows[0]
    for row in rows:
        row["jct_mean_vs_fcfs"] = relative_change(row["jct_mean"], fcfs["jct_mean"])
        row["engine_jct_mean_vs_fcfs"] = relative_change(
            row["engine_jct_mean"], fcfs["engine_jct_mean"]
        )
        # Paired by seed (same prompts, same arrivals): the spread of the gain.
        per_seed = [
            relative_change(r["jct_mean"], f["jct_mean"])
            for r, f in zip(row["runs"], fcfs["runs"], strict=True)
        ]
        row["jct_mean_vs_fcfs_per_seed"] = per_seed
        row["jct_mean_vs_fcfs_std"] = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
        log(
            f"{row['config']}: mean {row['jct_mean']:.2f} s ({100 * row['jct_mean_vs_fcfs']:+.1f}% "
            f"vs FCFS; engine-timed {row['engine_jct_mean']:.2f} s, "
            f"{100 * row['engine_jct_mean_vs_fcfs']:+.1f}%), p99 {row['jct_p99']:.2f} s, "
            f"TTFT {row['ttft_mean']:.2f} s, "
            f"{row['throughput_rps']:.2f} req/s, {row['errors']} errors, added {row['added_latency_p50_ms']:.2f} ms"
        )
