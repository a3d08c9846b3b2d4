"""`ssjf bench serve`: FCFS vs SSJF on a real CPU vLLM, through the ssjf gateway.

1. Start vLLM (``--scheduling-policy priority``, a few sequences in flight).
2. Measure its capacity in tokens/s (saturated closed loop, see
   :mod:`ssjf.bench.serve.measure`) and turn it into req/s for the workload's mean length.
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

Code: ``config`` (settings), ``engines`` (engine processes), ``replay`` (capacity
probe, gateways, replays), ``figures`` (summaries and report rows), this module
(the run end to end); ``client``, ``measure``, ``items`` and ``gateway_proc`` are
the load generator's parts.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ssjf.bench.serve.config import ServeBenchConfig, config_names
from ssjf.bench.serve.engines import allowed_cpu_count, start_engines
from ssjf.bench.serve.items import (
    TrainingRecord,
    WorkItem,
    load_alpaca_training,
    load_alpaca_workload,
    split_by_prompt,
)
from ssjf.bench.serve.replay import run_replays
from ssjf.bench.serve.vllm_metrics import METRICS
from ssjf.stats import kendall_tau_b
from ssjf.testbed.vllm_cpu import VllmCpuServer, set_affinity_all_threads


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


def run_serve_bench(cfg: ServeBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole benchmark; return ``{"meta": {...}, "configs": [rows]}``."""
    if cfg.export_only and cfg.export_workload is None:
        raise ValueError("export_only needs export_workload (the file to write)")
    check_vllm_settings(cfg)
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
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.node()}, {allowed_cpu_count()} CPUs",
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
            engines = start_engines(cfg, names if side_by_side else names[:1], servers, meta, log)
            if not side_by_side:
                engines = dict.fromkeys(names, engines[names[0]])
        meta["side_by_side"] = side_by_side
        return asyncio.run(
            run_replays(
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


def check_vllm_settings(cfg: ServeBenchConfig) -> None:
    """Refuse bad ``vllm bench serve`` style settings before anything starts (not after
    a 45-minute run)."""
    if cfg.request_rate is not None and not cfg.request_rate > 0:
        raise ValueError(f"request rate must be > 0 req/s (or inf), got {cfg.request_rate}")
    unknown = [m for m in cfg.percentile_metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown percentile metrics {unknown}: choose from {', '.join(METRICS)}")
    bad = [p for p in cfg.metric_percentiles if not 0 <= p <= 100]
    if bad:
        raise ValueError(f"metric percentiles must be within 0..100, got {bad}")


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
