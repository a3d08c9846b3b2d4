"""`ssjf bench serve`: FCFS vs SSJF on a real CPU vLLM, through the ssjf gateway.

1. Start vLLM (``--scheduling-policy priority``, a few sequences in flight).
2. Measure its capacity on the workload (closed loop, saturated).
3. Replay the same Poisson arrivals at ``load`` x capacity through each config:
   ``fcfs-direct`` (engine directly, no priorities: equal priorities are FCFS),
   ``ssjf-vllm-priority`` (gateway, vllm backend, priority from the predictor),
   ``ssjf-gateway-queue`` (gateway holds requests; max in flight = engine slots),
   optionally ``fcfs-gateway`` (the gateway with FCFS and no predictor: its cost
   alone) and ``sjf-oracle-direct`` (true lengths as priorities; an upper bound).
4. Measure the gateway's added latency at low load (tiny requests, no predictor).

Lengths are enforced with ``max_tokens`` + ``ignore_eos``, so ``max_tokens`` *is* the
true length here; the gateway runs with ``cap_estimate_by_max_tokens = false`` so
it cannot read the truth from it.
"""

from __future__ import annotations

import asyncio
import itertools
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ssjf.engines.vllm_cpu import VllmCpuConfig, VllmCpuServer, build_model_with_engine
from ssjf.loadgen.client import make_client, replay, saturate, send_one
from ssjf.loadgen.gateway_proc import GatewayProcess
from ssjf.loadgen.stats import percentile, summarize
from ssjf.loadgen.workload import (
    WorkItem,
    load_alpaca_workload,
    poisson_arrivals,
    split_by_prompt,
)

CONFIGS = ("fcfs-direct", "ssjf-vllm-priority", "ssjf-gateway-queue")
#: FCFS through the same gateway (no predictor, fcfs policy): separates what the
#: gateway's own CPU costs on a small machine from what its scheduling gains.
FCFS_GATEWAY = "fcfs-gateway"
ORACLE = "sjf-oracle-direct"


@dataclass(frozen=True, slots=True)
class ServeBenchConfig:
    """Settings of one ``ssjf bench serve`` run; defaults keep it within ~15 minutes."""

    #: Requests replayed per config (distinct AlpacaEval prompts).
    requests: int = 200
    #: Arrival rate as a fraction of the measured capacity.
    load: float = 0.9
    #: Whose real output lengths to replay: gpt-3.5-turbo-1106 has a realistic, wide
    #: spread (mean 190, CV 0.76 Mistral tokens) and answers fast enough for a CPU run.
    generator: str = "gpt-3.5-turbo-1106"
    #: Lengths above this are cut to it (5% of this generator's answers) so one
    #: request cannot hold a slot for minutes on a CPU engine.
    max_tokens_cap: int = 512
    #: The engine's --max-num-seqs: a few sequences in flight, like a small deployment.
    max_num_seqs: int = 4
    #: Predictor family from ssjf.predict trained on the *other* prompts, or "none".
    predictor: str = "tfidf"
    #: Add the oracle config (true lengths as priorities), labelled as such.
    oracle: bool = True
    #: Add FCFS through the gateway (the gateway's cost without its scheduling).
    fcfs_gateway: bool = True
    #: The workload is replayed in this many slices, every config in turn on each,
    #: so drifts in a shared machine's load do not favour whichever config ran first.
    rounds: int = 4
    #: vLLM --stream-interval: tokens per streamed chunk after the first. On a small
    #: CPU machine per-chunk work (engine API server, gateway, client) competes with
    #: generation; 8 keeps TTFT exact and cuts that work 8x for every config alike.
    stream_interval: int = 8
    seed: int = 0
    #: Requests (other prompts) for the saturated capacity run.
    capacity_requests: int = 64
    #: Tiny sequential requests per path for the added-latency measurement.
    latency_requests: int = 100
    endpoint: str = "chat"
    #: Use an engine already running (same flags) instead of starting one.
    engine_url: str | None = None
    #: Gateway settings shared by the gateway configs (GatewayConfig fields).
    gateway: dict[str, Any] = field(default_factory=dict)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-a between two sequences (ties count as neither)."""
    n = len(x)
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            a = (x[i] > x[j]) - (x[i] < x[j])
            b = (y[i] > y[j]) - (y[i] < y[j])
            s += a * b
    pairs = n * (n - 1) // 2
    return s / pairs if pairs else float("nan")


def train_predictor(
    family: str, train: Sequence[WorkItem], out_dir: Path
) -> tuple[Path | None, Any]:
    """Fit ``family`` on the training prompts' capped lengths and save it."""
    if family == "none":
        return None, None
    try:
        from ssjf.predict import make_predictor
    except ImportError as exc:
        raise RuntimeError(
            f"predictor {family!r} needs ssjf.predict (pip install 'ssjf[predict]'): {exc}"
        ) from exc
    pred = make_predictor(family)
    pred.fit([it.prompt for it in train], [float(it.max_tokens) for it in train])
    pred.save(out_dir)
    return out_dir, pred


async def added_latency(
    direct_url: str, gw_url: str, n: int, model: str, endpoint: str
) -> dict[str, float]:
    """p50 latency of tiny requests (1 token) direct vs via the gateway, alternating."""
    item = WorkItem(id="tiny", prompt="Hi", max_tokens=1)
    direct: list[float] = []
    gw: list[float] = []
    async with make_client() as client:
        for _ in range(5):  # warm both paths (connections, caches)
            await send_one(client, direct_url, item, model, endpoint, stream=False)
            await send_one(client, gw_url, item, model, endpoint, stream=False)
        for i in range(n):
            order = (direct_url, gw_url) if i % 2 == 0 else (gw_url, direct_url)
            for url in order:
                r = await send_one(client, url, item, model, endpoint, stream=False)
                if not r.ok:
                    raise RuntimeError(f"tiny request to {url} failed: {r.error}")
                (direct if url == direct_url else gw).append(r.jct * 1e3)
    d50, g50 = percentile(direct, 50), percentile(gw, 50)
    return {"direct_p50_ms": d50, "gateway_p50_ms": g50, "added_p50_ms": g50 - d50}


def _row(name: str, results: Sequence[Any], added_ms: float, wall_s: float) -> dict[str, Any]:
    s = summarize(results)
    # Throughput per round would count the idle gaps between rounds: use the sum of
    # each round's span instead (completed requests / time spent replaying).
    return {
        "config": name,
        "jct_mean": s.jct_mean,
        "jct_p50": s.jct_p50,
        "jct_p99": s.jct_p99,
        "ttft_mean": s.ttft_mean,
        "throughput_rps": s.ok / wall_s if wall_s > 0 else float("nan"),
        "added_latency_p50_ms": added_ms,
        "ok": s.ok,
        "errors": s.errors,
        "exact_tokens": s.exact_tokens,
        "wall_s": wall_s,
    }


def run_serve_bench(cfg: ServeBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole benchmark; return ``{"meta": {...}, "configs": [rows]}``."""
    started = time.monotonic()
    items = load_alpaca_workload(generator=cfg.generator, max_tokens_cap=cfg.max_tokens_cap)
    train, held = split_by_prompt(items, cfg.requests + cfg.capacity_requests, cfg.seed)
    bench_items, cap_items = held[: cfg.requests], held[cfg.requests :]
    lens = [it.max_tokens for it in bench_items]
    log(
        f"workload: {len(bench_items)} AlpacaEval prompts, {cfg.generator} lengths capped at "
        f"{cfg.max_tokens_cap} (mean {sum(lens) / len(lens):.0f} tokens); predictor trained "
        f"on {len(train)} other prompts"
    )
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.node()}, {_cpus()} CPUs",
        "settings": {k: v for k, v in asdict(cfg).items() if k != "gateway"},
        "mean_tokens": sum(lens) / len(lens),
        "capped_fraction": sum(it.true_tokens > cfg.max_tokens_cap for it in bench_items)
        / len(bench_items),
    }
    tmp = Path(tempfile.mkdtemp(prefix="ssjf-bench-serve-"))
    pred_dir, pred = train_predictor(cfg.predictor, train, tmp / "predictor")
    if pred is not None:
        est = [float(e.point) for e in pred.predict([it.prompt for it in bench_items])]
        meta["predictor_kendall_tau"] = kendall_tau(est, lens)
        log(
            f"predictor {cfg.predictor}: Kendall tau {meta['predictor_kendall_tau']:.3f} on the bench prompts"
        )

    server: VllmCpuServer | None = None
    try:
        if cfg.engine_url:
            engine_url = cfg.engine_url.rstrip("/")
        else:
            log("building the tiny model and starting vLLM (1-3 minutes)...")
            from ssjf.engines.tiny_model import default_cache_root

            model = build_model_with_engine(default_cache_root())
            server = VllmCpuServer(
                VllmCpuConfig(
                    model=model,
                    max_num_seqs=cfg.max_num_seqs,
                    extra_args=("--stream-interval", str(cfg.stream_interval)),
                )
            )
            engine_url = server.start()
            meta["engine_startup_s"] = server.startup_s
            meta["engine_command"] = " ".join(server.command()[1:])
        return asyncio.run(
            _run(cfg, engine_url, bench_items, cap_items, pred_dir, meta, log, started)
        )
    finally:
        if server is not None:
            server.stop()


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


async def _run(
    cfg: ServeBenchConfig,
    engine_url: str,
    bench_items: list[WorkItem],
    cap_items: list[WorkItem],
    pred_dir: Path | None,
    meta: dict[str, Any],
    log: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    model, ep = "tiny", cfg.endpoint
    # Warm-up: the first requests after start pay one-off costs.
    async with make_client() as client:
        for it in cap_items[:4]:
            await send_one(client, engine_url, it, model, ep)
    rate, _ = await saturate(engine_url, cap_items, 2 * cfg.max_num_seqs, model, ep)
    meta["capacity_rps"] = rate
    meta["arrival_rate_rps"] = cfg.load * rate
    log(f"capacity {rate:.2f} req/s -> arrivals at {cfg.load * rate:.2f} req/s")
    arrivals = poisson_arrivals(len(bench_items), cfg.load * rate, cfg.seed)

    base: dict[str, Any] = {
        "upstreams": [engine_url],
        "backend": "vllm",
        "vllm_scheduling_policy": "priority",
        # max_tokens is the true length in this benchmark: never let it cap estimates.
        "cap_estimate_by_max_tokens": False,
        **cfg.gateway,
    }
    gateways = {
        "ssjf-vllm-priority": dict(base),
        "ssjf-gateway-queue": {**base, "max_in_flight": cfg.max_num_seqs},
        FCFS_GATEWAY: {**base, "policy": "fcfs"},
    }
    names = [
        *CONFIGS,
        *((FCFS_GATEWAY,) if cfg.fcfs_gateway else ()),
        *((ORACLE,) if cfg.oracle else ()),
    ]
    # The gateway's added latency: no predictor, tiny requests, low load.
    for name in names:
        if name in gateways:
            with GatewayProcess(dict(gateways[name])) as gw:
                lat = await added_latency(engine_url, gw.url, cfg.latency_requests, model, ep)
            meta.setdefault("added_latency", {})[name] = lat
            log(f"{name}: added latency p50 {lat['added_p50_ms']:.2f} ms")

    # The gateways for the replays, all up at once (idle ones cost nothing).
    procs: dict[str, GatewayProcess] = {}
    try:
        for name in names:
            if name in gateways:
                use_pred = pred_dir is not None and name != FCFS_GATEWAY
                settings = {**gateways[name], "predictor": str(pred_dir) if use_pred else None}
                procs[name] = GatewayProcess(settings)
                procs[name].start()
        results: dict[str, list[Any]] = {n: [] for n in names}
        walls: dict[str, float] = dict.fromkeys(names, 0.0)
        # Rounds: each config replays the same slice of the workload in turn, so a
        # change in the shared machine's load hits every config alike.
        bounds = [round(i * len(bench_items) / cfg.rounds) for i in range(cfg.rounds + 1)]
        for r, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            items, offs = bench_items[lo:hi], arrivals[lo:hi]
            offs = [a - offs[0] for a in offs]
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                t0 = time.monotonic()
                if name in procs:
                    res = await replay(procs[name].url, items, offs, model, ep)
                elif name == ORACLE:
                    # Upper bound: the true length as the vLLM priority (gateway's bucket).
                    extras = [{"priority": it.max_tokens // 8} for it in items]
                    res = await replay(engine_url, items, offs, model, ep, extras)
                else:
                    res = await replay(engine_url, items, offs, model, ep)
                results[name].extend(res)
                walls[name] += time.monotonic() - t0
            log(f"round {r + 1}/{cfg.rounds} done")
    finally:
        for proc in procs.values():
            proc.stop()

    rows: list[dict[str, Any]] = []
    for name in names:
        added = meta.get("added_latency", {}).get(name, {}).get("added_p50_ms", 0.0)
        row = _row(name, results[name], added, walls[name])
        rows.append(row)
        log(
            f"{name}: mean {row['jct_mean']:.2f} s, p99 {row['jct_p99']:.2f} s, "
            f"TTFT {row['ttft_mean']:.2f} s, {row['throughput_rps']:.2f} req/s, "
            f"{row['errors']} errors, added {added:.2f} ms"
        )
    fcfs = rows[0]["jct_mean"]
    for row in rows:
        row["jct_mean_vs_fcfs"] = row["jct_mean"] / fcfs - 1.0
    meta["total_s"] = time.monotonic() - started
    return {"meta": meta, "configs": rows}
