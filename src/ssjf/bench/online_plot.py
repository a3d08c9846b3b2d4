"""The figure of `ssjf bench predictor --online`: tau and share of the oracle's gain per window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssjf.plots._common import figure_title, load_pyplot, policy_colors, save_figure


def plot_online(doc: dict[str, Any], path: str | Path) -> Path:
    """Two panels (pooled tau, share of oracle SJF's gain) over windows, one line per arm.

    Dotted verticals mark windows where some seed swapped in a retrained predictor;
    windows where the oracle gains under ``MIN_ORACLE_GAIN`` have no share (a gap).
    """
    plt = load_pyplot()
    cfg, res = doc["config"], doc["result"]
    arms = list(cfg["arms"])
    colors = policy_colors(["fcfs", *arms], "fcfs")
    xs = [w["start"] for w in res["windows"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for ax, key, name in (
        (axes[0], "tau", "pooled Kendall tau-b (estimates vs true lengths)"),
        (axes[1], "oracle_gain_share", "share of oracle SJF's mean-JCT gain"),
    ):
        for arm in arms:
            ys = [w["arms"][arm][key] for w in res["windows"]]
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", ms=3,
                    color=colors[arm], label=arm)  # fmt: skip
        for w in res["windows"]:
            if any(e["swapped"] for e in w["retrains"]):
                ax.axvline(w["start"], color="grey", lw=0.6, ls=":")
        if key == "oracle_gain_share":
            ax.axhline(1.0, color="k", lw=0.8, ls=":", label="sjf (oracle)")
            ax.axhline(0.0, color=colors["fcfs"], lw=0.8, label="fcfs")
        ax.set_xlabel(f"first request of the window ({cfg['window']} requests, arrival order)")
        ax.set_ylabel(name)
    axes[1].legend(fontsize=7, loc="best")
    st = res["stream"]
    fig.suptitle(
        figure_title(
            "Learning the traffic: shipped vs calibrated vs retrained",
            f"{st['unseen_request_share']:.0%} of requests by generators absent from training · "
            f"serial engine · paper cost · load {cfg['load']:g} · {cfg['requests']} requests × "
            f"{len(cfg['seeds'])} seeds · dotted: a retrain swapped",
        ),
        fontsize=10,
    )
    return save_figure(plt, fig, path)
