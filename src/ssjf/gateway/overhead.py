"""Measure the latency the gateway adds: the same requests direct and through it, at low load.

Requests go one at a time, alternating direct / via the gateway so both see
the same engine state and machine noise; the added latency is the difference
of the two medians (and the median of the paired differences). Used by
`ssjf bench gateway-overhead` and by the serving benchmark (`ssjf bench serve`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from ssjf.stats import percentile


def measure_added_latency(
    direct_url: str,
    gateway_url: str,
    *,
    n: int = 200,
    warmup: int = 20,
    body: dict[str, Any] | None = None,
    path: str = "/v1/completions",
    gateway_headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Added latency (ms) of ``gateway_url`` over ``direct_url`` for ``body``, one request at a time.

    The default body asks for one token, so engine time is small and stable
    and the comparison isolates the gateway's own work. ``gateway_headers``
    (e.g. the gateway's API key) go to the gateway only.
    """
    import httpx

    body = body or {"model": "tiny", "prompt": "Hello", "max_tokens": 1}
    direct: list[float] = []
    via: list[float] = []
    with httpx.Client(timeout=60, trust_env=False) as client:
        for i in range(warmup + n):
            pair = []
            # Alternate which goes first so neither side always sees a warmer engine.
            order = (direct_url, gateway_url) if i % 2 == 0 else (gateway_url, direct_url)
            for base in order:
                t0 = time.perf_counter()
                extra = gateway_headers if base == gateway_url else None
                r = client.post(base.rstrip("/") + path, json=body, headers=extra)
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"{base}{path} answered {r.status_code}: {r.text[:200]}")
                pair.append((base, dt))
            if i < warmup:
                continue
            d = dict(pair)
            direct.append(d[direct_url] * 1e3)
            via.append(d[gateway_url] * 1e3)
    diffs = [g - d for g, d in zip(via, direct, strict=True)]
    return {
        "requests": float(n),
        "direct_p50_ms": statistics.median(direct),
        "gateway_p50_ms": statistics.median(via),
        "added_latency_p50_ms": statistics.median(via) - statistics.median(direct),
        "paired_diff_p50_ms": statistics.median(diffs),
        "paired_diff_p90_ms": percentile(diffs, 90),
    }
