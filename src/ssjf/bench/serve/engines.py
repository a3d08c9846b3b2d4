"""The engine processes of ``ssjf bench serve``: test-bed vLLMs, started and pinned to CPUs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ssjf.bench.serve.config import ServeBenchConfig
from ssjf.testbed.vllm_cpu import (
    VllmCpuConfig,
    VllmCpuServer,
    build_model_with_engine,
    free_port,
    set_affinity_all_threads,
)


def start_engines(
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
    from ssjf.testbed.tiny_model import default_cache_root

    log(f"building the tiny model and starting {len(names)} vLLM engine(s) (1-4 minutes)...")
    model = build_model_with_engine(default_cache_root())
    pin = len(names) > 1 or cfg.pin_engine
    engine_cpus = pick_engine_cpus() if pin else None
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


def allowed_cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def pick_engine_cpus() -> tuple[int, ...] | None:
    """The last allowed CPU for the engine core, when there is another one for the rest."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1],) if len(cpus) >= 2 else None
