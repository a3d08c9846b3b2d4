"""The figure of `ssjf bench calibration`: share of the oracle's gain per window, per policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssjf.plots._common import (
    figure_context,
    figure_title,
    load_pyplot,
    policy_colors,
    policy_label,
    save_figure,
)


def plot_shares(doc: dict[str, Any], path: str | Path) -> Path:
    """One panel per (stream, engine): window index vs share, one line per policy.

    FCFS (0) and the oracle (1) are left out: they are the scale, drawn as lines.
    Windows where the oracle gains under ``MIN_ORACLE_GAIN`` have no share and leave a gap.
    """
    plt = load_pyplot()
    cells = doc["cells"]
    cfg = doc["config"]
    constructed = {s["workload"] for s in doc["streams"] if s.get("constructed")}
    ncols = len({c["engine"] for c in cells})  # cells are stream-major: a row per stream
    nrows = -(-len(cells) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False, layout="constrained"
    )
    for ax, cell in zip(axes.flat, cells, strict=False):
        labels = [lb for lb in cell["policies"] if lb not in ("fcfs", "sjf")]
        colors = policy_colors(["fcfs", *labels], "fcfs")
        xs = [w["window"] for w in cell["windows"]]
        for label in labels:
            ys = [w["policies"][label]["oracle_gain_share"] for w in cell["windows"]]
            ax.plot(
                xs,
                [float("nan") if y is None else y for y in ys],
                marker="o",
                ms=3,
                color=colors[label],
                ls="--" if "calibrate=true" not in label else "-",
                label=policy_label(label),
            )
        ax.axhline(1.0, color="k", lw=0.8, ls=":", label="sjf (oracle)")
        ax.axhline(0.0, color=colors["fcfs"], lw=0.8, label="fcfs")
        ax.axhline(0.5, color="tab:red", lw=0.6, ls="-.", alpha=0.6)
        stream = cell["stream"] + (" (constructed)" if cell["stream"] in constructed else "")
        ax.set_title(
            figure_title(
                stream,
                figure_context("", cell["engine_spec"], cell["cost"], load=cfg["load"]).lstrip(
                    " ·"
                ),
                width=55,
            ),
            fontsize=9,
        )
        ax.set_xlabel(f"window of {cfg['window']} requests (arrival order)")
        ax.set_ylabel("share of oracle SJF's mean-JCT gain")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"Self-calibration over time · {cfg['requests']} requests × {len(cfg['seeds'])} seeds",
        fontsize=10,
    )
    return save_figure(plt, fig, path)
