"""Per-policy summaries of a simulation run, computed from per-request arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class RunArrays(Protocol):
    """What a summary reads: per-request arrays, one entry per request (``SimResult`` fits)."""

    arrival: np.ndarray
    first_scheduled: np.ndarray
    first_token: np.ndarray
    completion: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray


@dataclass(frozen=True, slots=True)
class SLO:
    """Latency objectives for goodput; ``None`` = no objective on that figure."""

    jct_s: float | None = None
    ttft_s: float | None = None

    @property
    def enabled(self) -> bool:
        return self.jct_s is not None or self.ttft_s is not None


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else math.nan


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def summarize(run: RunArrays, slo: SLO | None = None) -> dict[str, float]:
    """Latency, wait, throughput and goodput figures (seconds, requests/s).

    - ``jct`` = completion - arrival (end-to-end latency);
    - ``queue`` = first_scheduled - arrival (the first wait; waits after a
      preemption are inside the JCT, not here); ``max_wait`` is its maximum;
    - ``ttft`` = first_token - arrival; ``tpot`` = (completion - first_token) /
      (output_tokens - 1) over requests with more than one output token;
    - ``throughput_rps`` = completed / (last completion - first arrival), every
      request counted (not the SSJF paper's completions up to a percentile);
    - ``goodput_rps`` = requests meeting every SLO / the same span.
    """
    arrival = np.asarray(run.arrival, dtype=np.float64)
    completion = np.asarray(run.completion, dtype=np.float64)
    done = np.isfinite(completion)
    n = int(arrival.size)
    completed = int(done.sum())
    a = arrival[done]
    c = completion[done]
    jct = c - a
    queue = np.asarray(run.first_scheduled, dtype=np.float64)[done] - a
    first_tok = np.asarray(run.first_token, dtype=np.float64)[done]
    ttft = first_tok - a
    out = np.asarray(run.output_tokens, dtype=np.float64)[done]
    multi = out > 1
    tpot = (c[multi] - first_tok[multi]) / (out[multi] - 1)
    span = float(c.max() - arrival.min()) if completed else math.nan
    throughput = completed / span if completed and span > 0 else math.nan
    pre = np.asarray(run.preemptions, dtype=np.float64)
    summary = {
        "requests": float(n),
        "completed": float(completed),
        "jct_mean": _mean(jct),
        "jct_p50": _pct(jct, 50),
        "jct_p90": _pct(jct, 90),
        "jct_p99": _pct(jct, 99),
        "jct_max": float(jct.max()) if jct.size else math.nan,
        "queue_mean": _mean(queue),
        "queue_p99": _pct(queue, 99),
        "max_wait": float(queue.max()) if queue.size else math.nan,
        "ttft_mean": _mean(ttft),
        "ttft_p99": _pct(ttft, 99),
        "tpot_mean": _mean(tpot),
        "throughput_rps": throughput,
        "makespan_s": span,
        "preemptions": float(pre.sum()),
    }
    if slo is not None and slo.enabled:
        ok = np.ones(completed, dtype=bool)
        if slo.jct_s is not None:
            ok &= jct <= slo.jct_s
        if slo.ttft_s is not None:
            ok &= ttft <= slo.ttft_s
        good = int(ok.sum())
        summary["slo_attainment"] = good / n if n else math.nan
        summary["goodput_rps"] = good / span if completed and span > 0 else math.nan
    return summary
