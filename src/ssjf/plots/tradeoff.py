"""Trade-off curves: mean JCT against p99 JCT as a policy's tail bound is swept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ssjf.plots._common import BASELINE_COLOR, PALETTE, figure_title, load_pyplot, save_figure


def _bound_text(row: Mapping[str, Any]) -> str:
    bound = row.get("bound")
    if bound is None:
        return "off"
    return f"{bound:g}x" if row.get("knob") == "max_wait" else f"{bound:g}"


def tradeoff_curves(
    rows: Sequence[Mapping[str, Any]],
    cell: Mapping[str, Any],
    path: str | Path,
    context: str = "",
    budgets: Sequence[float] = (1.1, 2.0),
) -> Path:
    """Each (policy, knob) curve on the predictor (solid) and fed true lengths (dashed).

    ``rows``: curve points (``policy``, ``knob``, ``bound``, ``estimates``,
    ``jct_mean``, ``jct_p99``) of one cell; ``cell``: its FCFS and oracle SJF
    figures, drawn as reference points, with FCFS's p99 times each of
    ``budgets`` as vertical lines (the judged tail budgets). Points are labelled
    with their bound; down and left is better.
    """
    plt = load_pyplot()
    # Plain numbers (60, 150, 2000) on the log axis, not 6 x 10^1, as in load_curves.
    with plt.rc_context({"axes.formatter.min_exponent": 4}):
        return _draw(plt, rows, cell, path, context, budgets)


def _draw(
    plt: Any,
    rows: Sequence[Mapping[str, Any]],
    cell: Mapping[str, Any],
    path: str | Path,
    context: str,
    budgets: Sequence[float],
) -> Path:
    fig, ax = plt.subplots(figsize=(8.0, 5.4), layout="constrained")
    curves: list[tuple[str, str]] = []
    for r in rows:
        k = (str(r["policy"]), str(r["knob"]))
        if k not in curves:
            curves.append(k)
    for i, (policy, knob) in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        for est, style in (("predictor", "-"), ("truth", "--")):
            pts = [
                r for r in rows if (r["policy"], r["knob"], r["estimates"]) == (policy, knob, est)
            ]
            # Off last: the curve runs from the tightest bound to no bound at all.
            pts.sort(key=lambda r: (r["bound"] is None, r["bound"] or 0.0))
            if not pts:
                continue
            name = f"{policy} ({'tail budget' if knob == 'tail' else 'max wait'})"
            ax.plot(
                [r["jct_p99"] for r in pts],
                [r["jct_mean"] for r in pts],
                linestyle=style,
                marker="o" if est == "predictor" else "s",
                markersize=4,
                color=color,
                markerfacecolor=color if est == "predictor" else "white",
                label=f"{name}, {'predictor' if est == 'predictor' else 'true lengths'}",
            )
            for r in pts:
                ax.annotate(
                    _bound_text(r),
                    (r["jct_p99"], r["jct_mean"]),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color=color,
                )
    ax.scatter(
        [cell["fcfs_jct_p99"]], [cell["fcfs_jct_mean"]], color=BASELINE_COLOR, s=60, zorder=4,
        label="fcfs",
    )  # fmt: skip
    ax.scatter(
        [cell["sjf_jct_p99"]], [cell["sjf_jct_mean"]], facecolors="white", edgecolors="black",
        s=60, zorder=4, label="sjf (oracle)",
    )  # fmt: skip
    for b in budgets:
        x = b * float(cell["fcfs_jct_p99"])
        ax.axvline(x, color="black", linewidth=0.7, alpha=0.5, linestyle=":")
        ax.annotate(
            f"p99 = {b:g}x FCFS",
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            alpha=0.7,
        )
    ax.set_xscale("log")
    ax.set_xlabel("p99 JCT (s)")
    ax.set_ylabel("mean JCT (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(
        figure_title("Mean vs p99 JCT as the tail bound is swept (labels: bound)", context),
        fontsize=9,
    )
    return save_figure(plt, fig, path)
