"""PNG figures for simulation results (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'ssjf[plot]'") from None
    return plt


def jct_cdf(jcts: Mapping[str, Sequence[np.ndarray]], path: str | Path, title: str = "") -> Path:
    """Empirical CDF of JCT per policy (all seeds pooled), log-scaled time axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, arrays in jcts.items():
        if not arrays:
            continue
        x = np.sort(np.concatenate([np.asarray(a, dtype=float) for a in arrays]))
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        y = np.arange(1, x.size + 1) / x.size
        ax.plot(np.maximum(x, 1e-3), y, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title or "JCT CDF per policy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def mean_jct_bars(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Mean JCT by policy with error bars (std over seeds)."""
    plt = _pyplot()
    labels = [str(r["policy"]) for r in rows]
    means = [float(r["jct_mean"]) for r in rows]
    stds = [float(r.get("jct_mean_std") or 0.0) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 2), 4.0))
    ax.bar(labels, means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_ylabel("mean JCT (s)")
    ax.set_title(title or "mean JCT by policy (error bars: std over seeds)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made as needed) and free it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
