"""Predictor latency on one CPU core: one prompt at a time (p50/p99) and batched throughput.

A scheduler calls the predictor on the request path, so what matters is the time
to answer one prompt on the core the gateway can spare. Torch is limited to one
thread (``torch.set_num_threads(1)``) while measuring, when it is loaded; BLAS
thread pools are left as configured (set ``OMP_NUM_THREADS=1`` for a strict
single-core figure — ``ssjf bench predictor`` does).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ssjf.predict.base import Predictor


@contextmanager
def single_thread() -> Iterator[None]:
    """Limit torch (when imported) to one intra-op thread, and bypass embedding caches."""
    from ssjf.predict.encoder import cache_disabled

    torch: Any = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with cache_disabled():
            yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)


def measure_latency(
    predictor: Predictor,
    prompts: Sequence[str],
    models: Sequence[str | None] | None = None,
    *,
    n_single: int = 200,
    batch_size: int = 256,
    min_batch_prompts: int = 1024,
    warmup: int = 5,
) -> dict[str, float]:
    """``latency_p50_ms``, ``latency_p99_ms`` (one prompt per call), ``prompts_per_s`` batched."""
    if not prompts:
        raise ValueError("need at least one prompt to time")
    mods = list(models) if models is not None else [None] * len(prompts)
    with single_thread():
        for i in range(min(warmup, len(prompts))):
            predictor.predict([prompts[i]], [mods[i]])
        times = []
        for k in range(n_single):
            i = k % len(prompts)
            t0 = time.perf_counter()
            predictor.predict([prompts[i]], [mods[i]])
            times.append(time.perf_counter() - t0)
        done, t0 = 0, time.perf_counter()
        while done < min_batch_prompts:
            start = done % len(prompts)
            batch = [prompts[(start + j) % len(prompts)] for j in range(batch_size)]
            bmods = [mods[(start + j) % len(prompts)] for j in range(batch_size)]
            predictor.predict(batch, bmods)
            done += batch_size
        elapsed = time.perf_counter() - t0
    arr = np.array(times) * 1000.0
    return {
        "latency_p50_ms": float(np.percentile(arr, 50)),
        "latency_p99_ms": float(np.percentile(arr, 99)),
        "prompts_per_s": float(done / elapsed) if elapsed > 0 else float("inf"),
        "batch_size": float(batch_size),
    }
