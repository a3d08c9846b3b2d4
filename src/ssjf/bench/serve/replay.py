"""Replays of ``ssjf bench serve``: the capacity probe, the gateways, every config's
replay of every seed, and the gateway's added latency.

The capacity probe (:mod:`ssjf.bench.serve.measure`) sets the arrival rate; each seed
draws its own prompt order and Poisson arrivals, the same for every config; the
configs run side by side (one engine each, at the same time) or in turn.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ssjf.bench.serve.client import (
    RequestResult,
    endpoint_path,
    make_client,
    replay,
    request_body,
    send_one,
)
from ssjf.bench.serve.config import FCFS_GATEWAY, GATEWAY_CONFIGS, ORACLE, ServeBenchConfig
from ssjf.bench.serve.figures import compare_to_fcfs, config_row, run_figures
from ssjf.bench.serve.gateway_proc import GatewayProcess
from ssjf.bench.serve.items import WorkItem, poisson_arrivals
from ssjf.bench.serve.measure import measure_shared_token_throughput
from ssjf.bench.serve.vllm_metrics import vllm_metrics
from ssjf.estimate import LengthEstimate
from ssjf.gateway.config import load_config
from ssjf.gateway.ordering import EngineOrdering
from ssjf.gateway.overhead import measure_added_latency
from ssjf.request import Request

Log = Callable[[str], None]


async def added_latency(
    direct_url: str, gw_url: str, n: int, model: str, endpoint: str
) -> dict[str, float]:
    """Latency the gateway adds to one-token requests: ``ssjf bench gateway-overhead``'s
    measurement (alternating direct / via the gateway), on this bench's endpoint."""
    item = WorkItem(id="tiny", prompt="Hi", max_tokens=1)
    body = request_body(item, model, endpoint, stream=False)
    res = await asyncio.to_thread(
        measure_added_latency,
        direct_url,
        gw_url,
        n=n,
        warmup=5,
        body=body,
        path=endpoint_path(endpoint),
    )
    return {**res, "added_p50_ms": res["added_latency_p50_ms"]}


def _true_length_request(i: int, arrival: float, tokens: int) -> Request:
    """A request whose estimate is its true length (the oracle's view)."""
    return Request(
        id=i, arrival=arrival, prompt_tokens=0, estimate=LengthEstimate(point=float(tokens))
    )


def write_trace(path: Path, results: Sequence[RequestResult]) -> None:
    """One JSON line per request, times in seconds from the replay's first send."""
    t0 = min((r.sent for r in results), default=0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in results:
            row = {
                "id": r.id,
                "max_tokens": r.max_tokens,
                "sent": r.sent - t0,
                "first_token": None if r.first_token is None else r.first_token - t0,
                "end": r.end - t0,
                "ok": r.ok,
                "completion_tokens": r.completion_tokens,
                "error": r.error,
                **r.extra,
            }
            f.write(json.dumps(row) + "\n")


def estimate_sources(metrics_text: str) -> dict[str, int]:
    """Counts of ``ssjf_gateway_estimates_total{source=...}`` in a /metrics page."""
    out: dict[str, int] = {}
    for line in metrics_text.splitlines():
        if line.startswith("ssjf_gateway_estimates_total{"):
            labels, _, value = line.rpartition(" ")
            source = labels.split('source="', 1)[1].split('"', 1)[0]
            out[source] = int(float(value))
    return out


def gateway_settings(cfg: ServeBenchConfig, upstream: str, name: str) -> dict[str, Any]:
    """The gateway settings of config ``name`` in front of the engine at ``upstream``."""
    base: dict[str, Any] = {
        "upstreams": [upstream],
        "backend": "vllm",
        "vllm_scheduling_policy": "priority",
        # max_tokens is the true length in this benchmark: never let it cap estimates.
        "cap_estimate_by_max_tokens": False,
        "predictor_timeout_ms": cfg.predictor_timeout_ms,
        **cfg.gateway,
    }
    if name == "ssjf-gateway-queue":
        return {**base, "max_in_flight": cfg.max_num_seqs + cfg.queue_slack}
    if name == FCFS_GATEWAY:
        return {**base, "policy": "fcfs"}
    return base


async def probe_capacity(
    cfg: ServeBenchConfig,
    urls: Sequence[str],
    cap_items: Sequence[WorkItem],
    mean_tokens: float,
    seed: int,
    meta: dict[str, Any],
    log: Log,
) -> float:
    """Measure one engine's capacity now; record it; return the arrival rate (req/s):
    ``load`` x capacity, or ``request_rate`` when set.

    Side by side, every engine runs its closed loop at once, as in the replays
    (they share the CPU), and the capacity is their mean.
    """
    model, ep = str(cfg.model), cfg.endpoint
    conc = 2 * cfg.max_num_seqs  # twice the slots: the engine's queue never runs dry
    caps = await measure_shared_token_throughput(urls, cap_items, conc, model, ep)
    tokens_per_s = statistics.fmean(c.tokens_per_s for c in caps)
    rate = tokens_per_s / mean_tokens
    arrival = cfg.load * rate if cfg.request_rate is None else cfg.request_rate
    meta.setdefault("capacity", []).append(
        {
            "seed": seed,
            "tokens_per_s": tokens_per_s,
            "per_engine_tokens_per_s": [c.tokens_per_s for c in caps],
            "window_s": max(c.window_s for c in caps),
            "capacity_rps": rate,
            "arrival_rate_rps": arrival,
        }
    )
    each = " / ".join(f"{c.tokens_per_s:.0f}" for c in caps)
    log(
        f"capacity {tokens_per_s:.0f} tokens/s per engine ({each}) = {rate:.2f} req/s of "
        f"{mean_tokens:.0f} tokens -> seed {seed} arrivals at {arrival:.2f} req/s"
    )
    return arrival


def arrival_times(n: int, rate: float, seed: int) -> list[float]:
    """Poisson arrivals at ``rate`` req/s; all at 0 when ``rate`` is infinite (as
    ``vllm bench serve --request-rate inf`` sends them)."""
    return [0.0] * n if math.isinf(rate) else poisson_arrivals(n, rate, seed)


def vllm_run_keys(
    results: Sequence[RequestResult], rate: float, cfg: ServeBenchConfig
) -> dict[str, Any]:
    """One replay as a ``vllm bench serve`` result: its traffic keys and its metrics."""
    return {
        "num_prompts": len(results),
        "request_rate": rate if math.isfinite(rate) else "inf",
        "burstiness": 1.0,  # Poisson arrivals, as vLLM's default
        "max_concurrency": None,  # no client-side cap: the arrivals are open loop
        **vllm_metrics(results, cfg.metric_percentiles, cfg.percentile_metrics),
    }


async def replay_config(
    cfg: ServeBenchConfig,
    name: str,
    engines: dict[str, str],
    procs: dict[str, GatewayProcess],
    items: list[WorkItem],
    arrivals: list[float],
) -> list[RequestResult]:
    """Replay ``items`` at ``arrivals`` through config ``name``."""
    model, ep = str(cfg.model), cfg.endpoint
    if name in procs:
        return await replay(procs[name].url, items, arrivals, model, ep)
    if name == ORACLE:
        # Upper bound: the true length through the gateways' own engine mapping
        # (same policy, guard and buckets), keyed on the replay's arrival times.
        ordering = EngineOrdering.from_config(
            load_config(None, gateway_settings(cfg, engines[ORACLE], ORACLE), environ={}),
            epoch=0.0,
        )
        extras = [
            {"priority": ordering.key(_true_length_request(i, t, it.max_tokens))}
            for i, (t, it) in enumerate(zip(arrivals, items, strict=True))
        ]
        return await replay(engines[name], items, arrivals, model, ep, extras)
    return await replay(engines[name], items, arrivals, model, ep)


async def run_replays(
    cfg: ServeBenchConfig,
    names: list[str],
    engines: dict[str, str],
    side_by_side: bool,
    bench_items: list[WorkItem],
    cap_items: list[WorkItem],
    pred_dir: Path | None,
    meta: dict[str, Any],
    log: Log,
    started: float,
) -> dict[str, Any]:
    """Probe, measure the added latency, replay every seed through every config; report."""
    model, ep = str(cfg.model), cfg.endpoint
    distinct = list(dict.fromkeys(engines.values()))
    # Warm-up: the first requests after start pay one-off costs.
    async with make_client() as client:
        for url in distinct:
            for it in cap_items[:4]:
                await send_one(client, url, it, model, ep)
    mean_tokens = sum(it.max_tokens for it in bench_items) / len(bench_items)

    first_rate = await probe_capacity(cfg, distinct, cap_items, mean_tokens, cfg.seed, meta, log)
    meta["capacity_tokens_per_s"] = meta["capacity"][0]["tokens_per_s"]
    meta["capacity_rps"] = meta["capacity"][0]["capacity_rps"]
    meta["arrival_rate_rps"] = first_rate

    gateways = [n for n in names if n in GATEWAY_CONFIGS]
    # The gateway's added latency: no predictor, tiny requests, low load (the other
    # engines, side by side, are idle meanwhile).
    for name in gateways:
        with GatewayProcess(gateway_settings(cfg, engines[name], name)) as gw:
            lat = await added_latency(engines[name], gw.url, cfg.latency_requests, model, ep)
        meta.setdefault("added_latency", {})[name] = lat
        log(f"{name}: added latency p50 {lat['added_p50_ms']:.2f} ms")

    # The gateways for the replays, all up at once (idle ones cost nothing).
    procs: dict[str, GatewayProcess] = {}
    try:
        for name in gateways:
            use_pred = pred_dir is not None and name != FCFS_GATEWAY
            settings = {
                **gateway_settings(cfg, engines[name], name),
                "predictor": str(pred_dir) if use_pred else None,
            }
            procs[name] = GatewayProcess(settings)
            procs[name].start()

        results: dict[str, list[RequestResult]] = {n: [] for n in names}
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for k in range(cfg.seeds):
            seed = cfg.seed + k
            # Each seed: its own prompt order and arrival draw, the same for every config.
            items = list(bench_items)
            random.Random(seed).shuffle(items)
            # This host's speed drifts by 10-20% over minutes: measure capacity again
            # before each seed, so that its arrivals are at ``load`` of the engine now
            # (a fixed request_rate needs no new probe).
            rate = (
                first_rate
                if k == 0 or cfg.request_rate is not None
                else await probe_capacity(cfg, distinct, cap_items, mean_tokens, seed, meta, log)
            )
            arrivals = arrival_times(len(items), rate, seed)
            offered = rate * sum(it.max_tokens for it in items) / len(items)
            if side_by_side:
                log(f"seed {seed}: {len(names)} configs side by side, {len(items)} requests each")
                outs = await asyncio.gather(
                    *(replay_config(cfg, n, engines, procs, items, arrivals) for n in names)
                )
                done = list(zip(names, outs, strict=True))
            else:
                # One after another: rotate the order so none always runs first (or
                # last) on a machine whose speed drifts.
                order = names[k % len(names) :] + names[: k % len(names)]
                done = [
                    (n, await replay_config(cfg, n, engines, procs, items, arrivals)) for n in order
                ]
            for name, res in done:
                if cfg.trace_dir is not None:
                    write_trace(cfg.trace_dir / f"{name}.seed{seed}.jsonl", res)
                results[name].extend(res)
                fig = run_figures(seed, res, offered, cfg.max_num_seqs)
                fig["vllm"] = vllm_run_keys(res, rate, cfg)
                runs[name].append(fig)
                log(
                    f"seed {seed} {name}: mean {fig['jct_mean']:.2f} s "
                    f"(engine-timed {fig['engine_jct_mean']:.2f} s), "
                    f"{fig['tokens_per_s']:.0f} tokens/s ({fig['kept_up']:.2f} of offered; "
                    f"engine busy at {fig['engine_busy_tokens_per_s']:.0f} tokens/s: "
                    f"effective load {fig['effective_load']:.2f}; "
                    f"{fig['engine_full_tokens_per_s']:.0f} tokens/s with every slot busy: "
                    f"load {fig['load_at_full_speed']:.2f} of that), "
                    f"{fig['errors']} errors"
                )
        # Where the SSJF gateways' estimates came from (predictor, or the fallback
        # after a timeout, error or backlog): a replay on fallbacks is not SSJF.
        async with make_client() as client:
            for name, proc in procs.items():
                resp = await client.get(proc.url + "/metrics")
                sources = estimate_sources(resp.text)
                meta.setdefault("estimate_sources", {})[name] = sources
                log(f"{name}: estimates by source {sources}")
    finally:
        for proc in procs.values():
            proc.stop()

    rows: list[dict[str, Any]] = []
    for name in names:
        added = meta.get("added_latency", {}).get(name, {}).get("added_p50_ms", 0.0)
        row = config_row(name, results[name], runs[name], added)
        # Every seed pooled, throughputs over the replays' summed durations.
        row["vllm"] = vllm_metrics(
            results[name],
            cfg.metric_percentiles,
            cfg.percentile_metrics,
            duration_s=sum(r["vllm"]["duration"] for r in runs[name]),
        )
        rows.append(row)
    compare_to_fcfs(rows, log)
    meta["total_s"] = time.monotonic() - started
    return {"meta": meta, "configs": rows}
