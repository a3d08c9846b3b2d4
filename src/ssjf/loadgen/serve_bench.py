"""`ssjf bench serve`: FCFS vs SSJF on a real CPU vLLM, through the ssjf gateway.

1. Start vLLM (``--scheduling-policy priority``, a few sequences in flight).
2. Measure its capacity in tokens/s (saturated closed loop, see
   :mod:`ssjf.loadgen.capacity`) and turn it into req/s for the workload's mean length.
3. For each seed (its own prompt order and Poisson arrivals at ``load`` x capacity),
   replay the whole workload through each config:
   ``fcfs-direct`` (engine directly, no priorities: equal priorities are FCFS),
   ``ssjf-vllm-priority`` (gateway, vllm backend, priority from the predictor),
   ``ssjf-gateway-queue`` (gateway holds requests; max in flight = slots + slack),
   optionally ``fcfs-gateway`` (the gateway with FCFS and no predictor: its cost
   alone) and ``sjf-oracle-direct`` (true lengths as priorities; an upper bound).
   By default every config has an engine of its own, all sharing one CPU, and the
   configs replay at the same time (``side_by_side``: a host whose speed drifts
   then hits every config alike); otherwise one engine serves the configs in turn.
4. Measure the gateway's added latency at low load (tiny requests, no predictor).

Lengths are enforced with ``max_tokens`` + ``ignore_eos``, so ``max_tokens`` *is* the
true length here; the gateway runs with ``cap_estimate_by_max_tokens = false`` so
it cannot read the truth from it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ssjf.engines.vllm_cpu import (
    VllmCpuConfig,
    VllmCpuServer,
    build_model_with_engine,
    free_port,
    set_affinity_all_threads,
)
from ssjf.estimate import LengthEstimate
from ssjf.gateway.config import load_config
from ssjf.gateway.ordering import EngineOrdering
from ssjf.loadgen.capacity import measure_shared_token_throughput
from ssjf.loadgen.client import RequestResult, make_client, replay, send_one
from ssjf.loadgen.gateway_proc import GatewayProcess
from ssjf.loadgen.stats import (
    engine_busy_tokens_per_s,
    engine_full_tokens_per_s,
    summarize,
)
from ssjf.loadgen.workload import (
    TrainingRecord,
    WorkItem,
    load_alpaca_training,
    load_alpaca_workload,
    poisson_arrivals,
    split_by_prompt,
)
from ssjf.request import Request
from ssjf.stats import kendall_tau_b, percentile, relative_change

CONFIGS = ("fcfs-direct", "ssjf-vllm-priority", "ssjf-gateway-queue")
#: FCFS through the same gateway (no predictor, fcfs policy): separates what the
#: gateway's own CPU costs on a small machine from what its scheduling gains.
FCFS_GATEWAY = "fcfs-gateway"
ORACLE = "sjf-oracle-direct"
#: The configs that go through an ``ssjf serve`` gateway.
GATEWAY_CONFIGS = ("ssjf-vllm-priority", "ssjf-gateway-queue", FCFS_GATEWAY)


@dataclass(frozen=True, slots=True)
class ServeBenchConfig:
    """Settings of one ``ssjf bench serve`` run; the defaults take ~20 minutes on 2 cores."""

    #: Requests replayed per config and seed (distinct AlpacaEval prompts). Queues
    #: build up over hundreds of requests at load 0.9: a short replay that starts
    #: empty mostly measures the empty-queue transient, where order cannot matter
    #: (the simulator, 2 slots at this engine's step costs: oracle SJF -35% over
    #: 300 requests, -40% over 500; docs/bench_serve.md). The rest of the 805
    #: prompts train the predictor: 400 leaves it 405 (Kendall tau 0.46; 500 would
    #: leave 305, tau 0.43).
    requests: int = 400
    #: Arrival rate as a fraction of the measured capacity.
    load: float = 0.9
    #: Whose real output lengths to replay: gpt-3.5-turbo-1106 has a realistic, wide
    #: spread (mean 190, CV 0.76 Mistral tokens) and answers fast enough for a CPU run.
    generator: str = "gpt-3.5-turbo-1106"
    #: Lengths above this are cut to it (5% of this generator's answers) so one
    #: request cannot hold a slot for minutes on a CPU engine.
    max_tokens_cap: int = 512
    #: The engine's --max-num-seqs: a few sequences in flight. On these CPUs the tiny
    #: model's decode is per-sequence overhead, so the token rate grows little past 2
    #: in flight (docs/bench_serve.md); more slots only share it among more requests.
    max_num_seqs: int = 2
    #: Predictor family from ssjf.predict trained on the *other* prompts, or "none".
    #: tfidf-embed (TF-IDF + MiniLM sentence embeddings) ranks the bench prompts
    #: better than tfidf (Kendall tau 0.501 against 0.459, both trained on every
    #: generator); the simulator, with this engine's step costs, puts SSJF at
    #: -24.3% against -22.3% at load 0.9 on the bench's 400 requests
    #: (docs/bench_serve.md). Its encoder takes ~16 ms a prompt on a quiet core,
    #: more on the core the gateways share with the engines' API servers: see
    #: ``predictor_timeout_ms``.
    predictor: str = "tfidf-embed"
    #: The gateways' predictor time box (GatewayConfig.predictor_timeout_ms; its
    #: default of 50 ms suits a predictor with a core of its own). Here the gateways
    #: share one CPU with four API servers and the load generator, and an encoder
    #: that misses 50 ms there sends the request to the fallback estimate: the
    #: replay would no longer be SSJF (run 18's trial: 22 of 40 fallbacks). The wait
    #: is part of every latency measured, so a longer box costs what it costs.
    predictor_timeout_ms: float = 1000.0
    #: Train the predictor on every AlpacaEval generator's answers to the training
    #: prompts (conditioned on the model), not only ``generator``'s: 40 answers a
    #: prompt instead of one. The bench prompts stay unseen either way.
    train_all_generators: bool = True
    #: The gateway-held queue releases up to max_num_seqs + this many requests. With
    #: exactly the engine's slots, a slot idles from the moment a sequence ends until
    #: the gateway has seen the end of its stream and forwarded the next request; on
    #: this host the engine's API server delivers streams late and in bursts, and
    #: run 6 (slack 0) lost most of the gain to that. One more in flight waits in
    #: vLLM's own priority queue and starts at once; the rest stay in SSJF order.
    queue_slack: int = 1
    #: Add the oracle config (true lengths as priorities), labelled as such.
    oracle: bool = True
    #: Add FCFS through the gateway (the gateway's cost without its scheduling).
    fcfs_gateway: bool = False
    #: Independent replays (prompt order + arrivals) per config: one replay of a
    #: queue at load 0.9 is one draw from a wide distribution (the simulator gives
    #: a +-9% std of the gain at 400 requests), so figures are means over seeds.
    seeds: int = 2
    #: vLLM --stream-interval: tokens per streamed chunk after the first. On a small
    #: CPU machine per-chunk work (engine API server, gateway, client) competes with
    #: generation; 8 keeps TTFT exact and cuts that work 8x for every config alike.
    stream_interval: int = 8
    seed: int = 0
    #: Requests (other prompts) for the saturated capacity run (2 x slots outstanding).
    capacity_requests: int = 64
    #: Tiny sequential requests per path for the added-latency measurement.
    latency_requests: int = 100
    endpoint: str = "chat"
    #: Pin the started engine's core process to the last CPU and this process (its
    #: gateways and load generator, started later, inherit it) plus the engine's API
    #: server to the others. Off by default: on the 2-vCPU VM it did not steady the
    #: engine's speed, and with everything else squeezed onto one core the engine ran
    #: 8-16% slower in every config but plain FCFS (docs/bench_serve.md, run 13).
    #: Needs 2+ CPUs; ignored with ``engine_url``. Side by side (below) the engines'
    #: compute is always pinned, all of it to the same CPU.
    pin_engine: bool = False
    #: One engine per config, all started alike, their model compute sharing one CPU
    #: (the last; API servers, gateways and load generator on the others), and the
    #: configs' replays of a seed run *at the same time*, each on its own engine. The
    #: shared VMs this runs on switch each vCPU between a fast and a ~1.6x slower
    #: speed for seconds to minutes at a time (docs/bench_serve.md, "The host's speed"):
    #: one config after another, each replay met a different host, and at load 0.9 a
    #: 10-20% slower engine decided a replay more than its policy did. Side by side,
    #: the kernel time-slices the one CPU evenly among the engines (4 busy processes
    #: on one vCPU: within 1% of each other in every 10 s window), so every config
    #: sees the same host speed at every moment; the price is 1/N of the CPU per
    #: engine, and so N times longer replays. False: one engine, configs in turn
    #: (always so with ``engine_url``).
    side_by_side: bool = True
    #: Use an engine already running (same flags) instead of starting one.
    engine_url: str | None = None
    #: The model name requests carry, and so the one the gateway's predictor is
    #: conditioned on. None: the engines this bench starts serve the tiny model as
    #: ``generator`` (it plays that model: its lengths are the ones replayed); with
    #: ``engine_url``, give the name that engine serves.
    model: str | None = None
    #: Write every request of every replay here (``<config>.seed<N>.jsonl``: times
    #: relative to the replay's start, lengths, engine metrics), to look into a
    #: replay's figures; None = don't.
    trace_dir: Path | None = None
    #: Write the replayed workload here as JSONL (prompt, true and replayed length,
    #: the predictor's estimate), so that `ssjf simulate -w jsonl:FILE --columns
    #: predicted=predicted` can say what the simulator expects of the same prompts,
    #: lengths and estimates; None = don't.
    export_workload: Path | None = None
    #: Stop after training the predictor and writing ``export_workload``: no engine
    #: is started (the simulator's view of the bench in a minute, not forty).
    export_only: bool = False
    #: Gateway settings shared by the gateway configs (GatewayConfig fields).
    gateway: dict[str, Any] = field(default_factory=dict)


def train_predictor(
    family: str, train: Sequence[TrainingRecord], out_dir: Path
) -> tuple[Path | None, Any]:
    """Fit ``family`` on the training records (conditioned on their models) and save it."""
    if family == "none":
        return None, None
    try:
        from ssjf.predict import make_predictor
    except ImportError as exc:
        raise RuntimeError(
            f"predictor {family!r} needs ssjf.predict (pip install 'ssjf[predict]'): {exc}"
        ) from exc
    pred = make_predictor(family)
    pred.fit([r.prompt for r in train], [r.tokens for r in train], [r.model for r in train])
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


def _run_figures(
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


def _row(
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
        # (see ssjf.loadgen.stats.engine_timed_jct); NaN without per-request metrics.
        "engine_jct_mean": s.engine_jct_mean,
        "throughput_rps": sum(tput) / len(tput) if tput else math.nan,
        # The worst replay's generated / offered tokens (see _run_figures).
        "kept_up_min": min((r["kept_up"] for r in runs), default=math.nan),
        "added_latency_p50_ms": added_ms,
        "ok": s.ok,
        "errors": s.errors,
        "exact_tokens": s.exact_tokens,
        "runs": runs,
    }


def run_serve_bench(cfg: ServeBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole benchmark; return ``{"meta": {...}, "configs": [rows]}``."""
    if cfg.export_only and cfg.export_workload is None:
        raise ValueError("export_only needs export_workload (the file to write)")
    started = time.monotonic()
    items = load_alpaca_workload(generator=cfg.generator, max_tokens_cap=cfg.max_tokens_cap)
    train, bench_items = split_by_prompt(items, cfg.requests, cfg.seed)
    # The capacity probe's prompts come from the training side: they never reach a
    # gateway, and every prompt the bench replays stays unseen by the predictor.
    cap_items = random.Random(cfg.seed).sample(train, min(cfg.capacity_requests, len(train)))
    lens = [it.max_tokens for it in bench_items]
    model_name = cfg.model or (cfg.generator if cfg.engine_url is None else None)
    if model_name is None:
        raise ValueError("with engine_url, give the model name that engine serves (model)")
    cfg = replace(cfg, model=model_name)
    records = load_alpaca_training(
        {it.prompt_id for it in train},
        generators=None if cfg.train_all_generators else {cfg.generator},
        max_tokens_cap=cfg.max_tokens_cap,
    )
    log(
        f"workload: {len(bench_items)} AlpacaEval prompts, {cfg.generator} lengths capped at "
        f"{cfg.max_tokens_cap} (mean {sum(lens) / len(lens):.0f} tokens); predictor trained "
        f"on {len(records)} answers to {len(train)} other prompts; requests name model "
        f"{cfg.model!r}"
    )
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.node()}, {_cpus()} CPUs",
        "settings": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items()
            if k != "gateway"
        },
        "mean_tokens": sum(lens) / len(lens),
        "capped_fraction": sum(it.true_tokens > cfg.max_tokens_cap for it in bench_items)
        / len(bench_items),
    }
    tmp = Path(tempfile.mkdtemp(prefix="ssjf-bench-serve-"))
    pred_dir, pred = train_predictor(cfg.predictor, records, tmp / "predictor")
    est: list[float] | None = None
    if pred is not None:
        # As the gateway will: conditioned on the model name the requests carry.
        prompts = [it.prompt for it in bench_items]
        est = [float(e.point) for e in pred.predict(prompts, [cfg.model] * len(prompts))]
        meta["predictor_kendall_tau"] = kendall_tau_b(est, lens)
        log(
            f"predictor {cfg.predictor}: Kendall tau {meta['predictor_kendall_tau']:.3f} on the bench prompts"
        )
    if cfg.export_workload is not None:
        export_workload(cfg.export_workload, bench_items, est)
        log(f"workload written to {cfg.export_workload}")
    if cfg.export_only:
        return {"meta": meta, "configs": []}

    names = config_names(cfg)
    side_by_side = cfg.side_by_side and not cfg.engine_url
    servers: list[VllmCpuServer] = []
    # Pinning the engines moves this process off their CPU; give the caller its
    # CPUs back afterwards.
    affinity = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        if cfg.engine_url:
            url = cfg.engine_url.rstrip("/")
            engines = dict.fromkeys(names, url)
        else:
            engines = _start_engines(cfg, names if side_by_side else names[:1], servers, meta, log)
            if not side_by_side:
                engines = dict.fromkeys(names, engines[names[0]])
        meta["side_by_side"] = side_by_side
        return asyncio.run(
            _run(
                cfg,
                names,
                engines,
                side_by_side,
                bench_items,
                cap_items,
                pred_dir,
                meta,
                log,
                started,
            )
        )
    finally:
        for server in servers:
            server.stop()
        if affinity is not None:
            set_affinity_all_threads(os.getpid(), affinity)


def export_workload(
    path: Path, items: Sequence[WorkItem], estimates: Sequence[float] | None
) -> None:
    """The replayed prompts as JSONL rows for `ssjf simulate -w jsonl:PATH`.

    ``output_tokens`` is the replayed (capped) length, ``true_tokens`` the
    generator's real one; ``predicted`` (when given) is what the gateways' predictor
    says of the prompt, for ``--columns predicted=predicted``.
    """
    if estimates is not None and len(estimates) != len(items):
        raise ValueError(f"{len(estimates)} estimates for {len(items)} items")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, it in enumerate(items):
            row: dict[str, Any] = {
                "id": it.id,
                "prompt_id": it.prompt_id,
                "prompt": it.prompt,
                "output_tokens": it.max_tokens,
                "true_tokens": it.true_tokens,
            }
            if estimates is not None:
                row["predicted"] = float(estimates[i])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


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


def config_names(cfg: ServeBenchConfig) -> list[str]:
    """The configs a run compares, FCFS (the baseline) first."""
    return [
        *CONFIGS,
        *((FCFS_GATEWAY,) if cfg.fcfs_gateway else ()),
        *((ORACLE,) if cfg.oracle else ()),
    ]


def _start_engines(
    cfg: ServeBenchConfig,
    names: Sequence[str],
    servers: list[VllmCpuServer],
    meta: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, str]:
    """Start one engine per name (appended to ``servers`` as they start); their URLs.

    Several engines (side by side) get their model compute pinned to one shared
    CPU; one engine is pinned only with ``pin_engine``.
    """
    from ssjf.engines.tiny_model import default_cache_root

    log(f"building the tiny model and starting {len(names)} vLLM engine(s) (1-4 minutes)...")
    model = build_model_with_engine(default_cache_root())
    pin = len(names) > 1 or cfg.pin_engine
    engine_cpus = _engine_cpus() if pin else None
    ports: set[int] = set()
    while len(ports) < len(names):  # distinct even if the OS hands a port out twice
        ports.add(free_port())
    for port in sorted(ports):
        servers.append(
            VllmCpuServer(
                VllmCpuConfig(
                    model=model,
                    engine_cpus=engine_cpus,
                    served_model_name=str(cfg.model),
                    max_num_seqs=cfg.max_num_seqs,
                    extra_args=(
                        "--stream-interval",
                        str(cfg.stream_interval),
                        # Engine-side timings on every answer: the engine-timed JCT.
                        "--enable-per-request-metrics",
                    ),
                ),
                port=port,
            )
        )
    # Start them together: each start is mostly waiting for imports and compilation.
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        urls = list(pool.map(lambda srv: srv.start(), servers))
    if engine_cpus:
        rest = set(os.sched_getaffinity(0)) - set(engine_cpus)
        set_affinity_all_threads(os.getpid(), rest)
        log(
            f"engine core(s) pinned to CPU {list(engine_cpus)}; API servers, gateways "
            f"and load generator on {sorted(rest)}"
        )
    meta["engine_cpus"] = list(engine_cpus) if engine_cpus else None
    meta["engines"] = len(servers)
    meta["engine_startup_s"] = max(srv.startup_s for srv in servers)
    meta["engine_command"] = " ".join(servers[0].command()[1:])
    return dict(zip(names, urls, strict=True))


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _engine_cpus() -> tuple[int, ...] | None:
    """The last allowed CPU for the engine core, when there is another one for the rest."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1],) if len(cpus) >= 2 else None


async def _run(
    cfg: ServeBenchConfig,
    names: list[str],
    engines: dict[str, str],
    side_by_side: bool,
    bench_items: list[WorkItem],
    cap_items: list[WorkItem],
    pred_dir: Path | None,
    meta: dict[str, Any],
    log: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    model, ep = str(cfg.model), cfg.endpoint
    distinct = list(dict.fromkeys(engines.values()))
    # Warm-up: the first requests after start pay one-off costs.
    async with make_client() as client:
        for url in distinct:
            for it in cap_items[:4]:
                await send_one(client, url, it, model, ep)
    mean_tokens = sum(it.max_tokens for it in bench_items) / len(bench_items)

    async def capacity(seed: int) -> float:
        """Measure one engine's capacity now; record it; return the arrival rate (req/s).

        Side by side, every engine runs its closed loop at once, as in the replays
        (they share the CPU), and the capacity is their mean.
        """
        conc = 2 * cfg.max_num_seqs  # twice the slots: the engine's queue never runs dry
        caps = await measure_shared_token_throughput(distinct, cap_items, conc, model, ep)
        tokens_per_s = statistics.fmean(c.tokens_per_s for c in caps)
        rate = tokens_per_s / mean_tokens
        meta.setdefault("capacity", []).append(
            {
                "seed": seed,
                "tokens_per_s": tokens_per_s,
                "per_engine_tokens_per_s": [c.tokens_per_s for c in caps],
                "window_s": max(c.window_s for c in caps),
                "capacity_rps": rate,
                "arrival_rate_rps": cfg.load * rate,
            }
        )
        each = " / ".join(f"{c.tokens_per_s:.0f}" for c in caps)
        log(
            f"capacity {tokens_per_s:.0f} tokens/s per engine ({each}) = {rate:.2f} req/s of "
            f"{mean_tokens:.0f} tokens -> seed {seed} arrivals at {cfg.load * rate:.2f} req/s"
        )
        return cfg.load * rate

    first_rate = await capacity(cfg.seed)
    meta["capacity_tokens_per_s"] = meta["capacity"][0]["tokens_per_s"]
    meta["capacity_rps"] = meta["capacity"][0]["capacity_rps"]
    meta["arrival_rate_rps"] = first_rate

    def gateway_settings(name: str) -> dict[str, Any]:
        base: dict[str, Any] = {
            "upstreams": [engines[name]],
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

    gateways = [n for n in names if n in GATEWAY_CONFIGS]
    # The gateway's added latency: no predictor, tiny requests, low load (the other
    # engines, side by side, are idle meanwhile).
    for name in gateways:
        with GatewayProcess(gateway_settings(name)) as gw:
            lat = await added_latency(engines[name], gw.url, cfg.latency_requests, model, ep)
        meta.setdefault("added_latency", {})[name] = lat
        log(f"{name}: added latency p50 {lat['added_p50_ms']:.2f} ms")

    # The gateways for the replays, all up at once (idle ones cost nothing).
    procs: dict[str, GatewayProcess] = {}
    try:
        for name in gateways:
            use_pred = pred_dir is not None and name != FCFS_GATEWAY
            settings = {**gateway_settings(name), "predictor": str(pred_dir) if use_pred else None}
            procs[name] = GatewayProcess(settings)
            procs[name].start()

        async def replay_config(
            name: str, items: list[WorkItem], arrivals: list[float]
        ) -> list[RequestResult]:
            if name in procs:
                return await replay(procs[name].url, items, arrivals, model, ep)
            if name == ORACLE:
                # Upper bound: the true length through the gateways' own engine mapping
                # (same policy, guard and buckets), keyed on the replay's arrival times.
                ordering = EngineOrdering.from_config(
                    load_config(None, gateway_settings(ORACLE), environ={}), epoch=0.0
                )
                extras = [
                    {"priority": ordering.key(_true_length_request(i, t, it.max_tokens))}
                    for i, (t, it) in enumerate(zip(arrivals, items, strict=True))
                ]
                return await replay(engines[name], items, arrivals, model, ep, extras)
            return await replay(engines[name], items, arrivals, model, ep)

        results: dict[str, list[RequestResult]] = {n: [] for n in names}
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for k in range(cfg.seeds):
            seed = cfg.seed + k
            # Each seed: its own prompt order and arrival draw, the same for every config.
            items = list(bench_items)
            random.Random(seed).shuffle(items)
            # This host's speed drifts by 10-20% over minutes: measure capacity again
            # before each seed, so that its arrivals are at ``load`` of the engine now.
            rate = first_rate if k == 0 else await capacity(seed)
            arrivals = poisson_arrivals(len(items), rate, seed)
            offered = rate * sum(it.max_tokens for it in items) / len(items)
            if side_by_side:
                log(f"seed {seed}: {len(names)} configs side by side, {len(items)} requests each")
                outs = await asyncio.gather(*(replay_config(n, items, arrivals) for n in names))
                done = list(zip(names, outs, strict=True))
            else:
                # One after another: rotate the order so none always runs first (or
                # last) on a machine whose speed drifts.
                order = names[k % len(names) :] + names[: k % len(names)]
                done = [(n, await replay_config(n, items, arrivals)) for n in order]
            for name, res in done:
                if cfg.trace_dir is not None:
                    write_trace(cfg.trace_dir / f"{name}.seed{seed}.jsonl", res)
                results[name].extend(res)
                fig = _run_figures(seed, res, offered, cfg.max_num_seqs)
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
        rows.append(_row(name, results[name], runs[name], added))
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
    meta["total_s"] = time.monotonic() - started
    return {"meta": meta, "configs": rows}
