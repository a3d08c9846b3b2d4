"""Per-policy summaries of a simulation run, computed from per-request arrays.

Means and percentiles come from :mod:`ssjf.stats` (linear-interpolated percentiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ssjf.stats import describe, maximum, mean, percentile


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


def summarize(run: RunArrays, slo: SLO | None = None) -> dict[str, float]:
    """Latency, wait, throughput and goodput figures (seconds, requests/s).

    - ``jct`` = completion - arrival (end-to-end latency);
    - ``queue`` = first_scheduled - arrival (the first wait; waits after a
      preemption are inside the JCT, not here); ``max_wait`` is its maximum;
    - ``ttft`` = first_token - arrival; ``tpot`` = (completion - first_token) /
      (output_tokens - 1) over requests with more than one output token;
    - ``throughput_rps`` = completed / (last completion - first arrival), every
      request counted (not the SSJF paper's completions up to a percentile);
    - ``goodput_rps`` = requests meeting every SLO / the same span;
    - ``preemptions`` and ``recomputed_tokens`` (cached tokens thrown away by
      preemptions, to be computed again) are totals over the run.
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
    # Optional: runs from engines that cannot preempt (or other sources) may lack it.
    redo = getattr(run, "recomputed_tokens", None)
    jct_s = describe(jct)
    summary = {
        "requests": float(n),
        "completed": float(completed),
        "jct_mean": jct_s.mean,
        "jct_p50": jct_s.p50,
        "jct_p90": jct_s.p90,
        "jct_p99": jct_s.p99,
        "jct_max": jct_s.max,
        "queue_mean": mean(queue),
        "queue_p99": percentile(queue, 99),
        "max_wait": maximum(queue),
        "ttft_mean": mean(ttft),
        "ttft_p99": percentile(ttft, 99),
        "tpot_mean": mean(tpot),
        "throughput_rps": throughput,
        "makespan_s": span,
        "preemptions": float(pre.sum()),
        "recomputed_tokens": float(np.sum(redo)) if redo is not None else 0.0,
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
