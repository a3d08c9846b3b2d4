"""Curves of a load (or arrival-rate) sweep: mean and p99 JCT against load, per policy."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from ssjf.plots._common import figure_title, load_pyplot, policy_colors, policy_label, save_figure


def load_curves(
    sweep: Mapping[float, Sequence[Mapping[str, Any]]],
    title: str,
    path: str | Path,
    *,
    oracles: Collection[str] = (),
    x_label: str = "load (share of the engine's capacity)",
    baseline: str = "fcfs",
) -> Path:
    """Mean and p99 JCT against load, one line per policy (oracles dashed), from a sweep.

    ``sweep`` maps each load (or arrival rate, with ``x_label`` saying so) to the
    aggregated rows of that run (``policy``, ``jct_mean``, ``jct_p99``); ``title``
    names workload, engine and cost model (:func:`figure_context`). JCT is
    log-scaled: it grows without bound near capacity, and the differences at low
    load must stay visible beside it.
    """
    plt = load_pyplot()
    # Plain numbers (60, 150, 2000) on the log axis, not 6 x 10^1: read at a glance.
    with plt.rc_context({"axes.formatter.min_exponent": 4}):
        return _load_curves(plt, sweep, title, path, oracles, x_label, baseline)


def _load_curves(
    plt: Any,
    sweep: Mapping[float, Sequence[Mapping[str, Any]]],
    title: str,
    path: str | Path,
    oracles: Collection[str],
    x_label: str,
    baseline: str,
) -> Path:
    xs = sorted(sweep)
    labels: list[str] = []
    for x in xs:
        labels.extend(str(r["policy"]) for r in sweep[x] if str(r["policy"]) not in labels)
    colors = policy_colors(labels, baseline)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6), layout="constrained")
    panels = (("jct_mean", "mean JCT (s)"), ("jct_p99", "p99 JCT (s)"))
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for label in labels:
            points = [
                (x, float(r.get(key, math.nan)))
                for x in xs
                for r in sweep[x]
                if str(r["policy"]) == label
            ]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                markersize=4,
                color=colors[label],
                linestyle="--" if label in oracles else "-",
                linewidth=1.6,
                label=policy_label(label, oracles),
            )
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(x_label)
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" (")[0], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=9)
    fig.suptitle(figure_title("JCT against load: mean and p99 per policy", title), fontsize=10)
    return save_figure(plt, fig, path)
