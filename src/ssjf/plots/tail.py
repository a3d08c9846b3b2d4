"""The figures of one simulation run: JCT tail (CCDF), mean and p99 bars, paired changes."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.plots._common import (
    ORACLE_DASHES,
    figure_title,
    load_pyplot,
    policy_colors,
    policy_label,
    save_figure,
)


def jct_ccdf(
    jcts: Mapping[str, Sequence[np.ndarray]],
    path: str | Path,
    context: str = "",
    oracles: Collection[str] = (),
    baseline: str = "fcfs",
) -> Path:
    """P[JCT > x] per policy (seeds pooled), both axes log-scaled: the tail is the story."""
    plt = load_pyplot()
    labels = [label for label, arrays in jcts.items() if arrays]
    colors = policy_colors(labels, baseline)
    fig, ax = plt.subplots(figsize=(7.2, 4.8), layout="constrained")
    n_min = math.inf
    dashes = iter(ORACLE_DASHES * len(labels))  # oracles often coincide: tell them apart
    for label in labels:
        x = np.sort(np.concatenate([np.asarray(a, dtype=float) for a in jcts[label]]))
        x = x[np.isfinite(x)]
        if x.size < 2:
            continue
        n_min = min(n_min, x.size)
        # P[JCT > x_(i)] = (n - 1 - i) / n; the last point (0) has no place on a log axis.
        y = (x.size - 1 - np.arange(x.size)) / x.size
        ax.step(
            np.maximum(x[:-1], 1e-3),
            y[:-1],
            where="post",
            color=colors[label],
            linestyle=next(dashes) if label in oracles else "-",
            linewidth=1.6,
            label=policy_label(label, oracles),
        )
    for q, name in ((0.5, "median"), (0.01, "p99")):
        if math.isfinite(n_min) and q >= 1 / n_min:
            ax.axhline(q, color="black", linewidth=0.6, alpha=0.4, linestyle=":")
            ax.annotate(
                name,
                (1.0, q),
                xycoords=("axes fraction", "data"),
                xytext=(-3, 2),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=8,
                alpha=0.7,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("job completion time x (s)")
    ax.set_ylabel("P[JCT > x]  (share of requests slower than x)")
    ax.set_title(
        figure_title("JCT tail: complementary CDF, all seeds pooled", context), fontsize=10
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    return save_figure(plt, fig, path)


def _per_seed_values(
    per_seed: Sequence[Mapping[str, Any]], key: str
) -> dict[str, dict[Any, float]]:
    """policy label -> seed -> value, in first-seen policy order."""
    out: dict[str, dict[Any, float]] = {}
    for row in per_seed:
        out.setdefault(str(row["policy"]), {})[row["seed"]] = float(row.get(key, math.nan))
    return out


def _finite_mean(values: Iterable[float]) -> float:
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def _paired_std(values: Mapping[Any, float], base: Mapping[Any, float] | None) -> float:
    """Sample std over seeds of (value - baseline) on the same seed; 0 without a pair."""
    if base is None:
        return 0.0
    d = np.asarray([v - base[s] for s, v in values.items() if s in base], dtype=float)
    d = d[np.isfinite(d)]
    return float(d.std(ddof=1)) if d.size > 1 else 0.0


def mean_p99_bars(
    per_seed: Sequence[Mapping[str, Any]],
    path: str | Path,
    context: str = "",
    oracles: Collection[str] = (),
    baseline: str = "fcfs",
) -> Path:
    """Mean JCT and p99 JCT per policy, side by side; error bars: paired spread vs FCFS.

    A bar is the mean over seeds; its error bar is the sample std over seeds of
    the difference from FCFS on the same seed (same jobs), which is the spread
    that matters when comparing with FCFS. Labels above the bars give the
    change vs FCFS.
    """
    plt = load_pyplot()
    panels = (("jct_mean", "mean JCT (s)"), ("jct_p99", "p99 JCT (s)"))
    data = {key: _per_seed_values(per_seed, key) for key, _ in panels}
    # The % labels are the mean of per-seed changes, as in the table's "Δ vs FCFS".
    changes = {key: _per_seed_values(per_seed, f"{key}_change_vs_fcfs") for key, _ in panels}
    labels = list(data["jct_mean"])
    colors = policy_colors(labels, baseline)
    fig, axes = plt.subplots(
        1, 2, figsize=(max(7.5, 1.5 * len(labels) + 3.5), 4.6), layout="constrained"
    )
    xs = np.arange(len(labels))
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        values = data[key]
        base = values.get(baseline)
        heights = [_finite_mean(values[lb].values()) for lb in labels]
        # nan, not 0, for FCFS itself: matplotlib then draws no zero-length cap.
        errs = [_paired_std(values[lb], base) if lb != baseline else math.nan for lb in labels]
        bars = ax.bar(
            xs,
            heights,
            yerr=errs,
            capsize=4,
            color=[colors[lb] for lb in labels],
            alpha=0.85,
            edgecolor="black",
            linewidth=0.6,
        )
        for bar, lb in zip(bars, labels, strict=True):
            if lb in oracles:
                bar.set_hatch("//")
                bar.set_alpha(0.45)
        tops = [h + (e if math.isfinite(e) else 0.0) for h, e in zip(heights, errs, strict=True)]
        for x, h, t, lb in zip(xs, heights, tops, labels, strict=True):
            if not math.isfinite(h):
                continue
            text = f"{h:.3g}"
            change = _finite_mean(changes[key].get(lb, {}).values())
            if lb != baseline and math.isfinite(change):
                text += f"\n{change * 100:+.0f}%"
            ax.annotate(
                text,
                (x, t),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_ylim(0, max((t for t in tops if math.isfinite(t)), default=1.0) * 1.22)
        ax.set_xticks(xs, [policy_label(lb, oracles) for lb in labels])
        if len(labels) > 4 or any(lb in oracles for lb in labels):
            ax.tick_params(axis="x", labelrotation=20)
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" (")[0], fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    has_base = baseline in labels
    note = (
        f"bars: mean over seeds; error bars: std over seeds of the paired difference from "
        f"{baseline} (same jobs per seed); % = mean of per-seed changes vs {baseline}"
        if has_base
        else "bars: mean over seeds (no FCFS run to pair with)"
    )
    fig.suptitle(figure_title("Mean and p99 JCT per policy", context) + "\n" + note, fontsize=9)
    return save_figure(plt, fig, path)


def paired_changes(
    per_seed: Sequence[Mapping[str, Any]],
    path: str | Path,
    context: str = "",
    oracles: Collection[str] = (),
    baseline: str = "fcfs",
) -> Path | None:
    """Per-seed change vs FCFS (%) of mean and p99 JCT: one dot per seed, the mean as a bar.

    ``None`` (nothing written) when FCFS was not run or no other policy was.
    """
    panels = (
        ("jct_mean_change_vs_fcfs", "mean JCT"),
        ("jct_p99_change_vs_fcfs", "p99 JCT"),
    )
    data = {key: _per_seed_values(per_seed, key) for key, _ in panels}
    labels = [lb for lb in data[panels[0][0]] if lb != baseline]
    if baseline not in data[panels[0][0]] or not labels:
        return None
    plt = load_pyplot()
    colors = policy_colors([baseline, *labels], baseline)
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(9.0, 1.6 + 0.55 * len(labels)),
        sharey=True,
        layout="constrained",
    )
    ys = np.arange(len(labels))[::-1]  # first policy on top
    for ax, (key, name) in zip(axes, panels, strict=True):
        lo, hi = 0.0, 0.0
        for y, lb in zip(ys, labels, strict=True):
            seeds = sorted(data[key][lb])
            vals = np.asarray([data[key][lb][s] * 100 for s in seeds], dtype=float)
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            m = float(vals.mean())
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
            oracle = lb in oracles
            ax.barh(
                y,
                m,
                height=0.6,
                color=colors[lb],
                alpha=0.3 if oracle else 0.45,
                hatch="//" if oracle else None,
                edgecolor=colors[lb],
            )
            # Seeds spread vertically inside the bar so coincident values stay visible.
            offsets = np.linspace(-0.18, 0.18, vals.size) if vals.size > 1 else np.zeros(1)
            ax.scatter(
                vals,
                y + offsets,
                s=22,
                facecolors="white" if oracle else colors[lb],
                edgecolors="black",
                linewidths=0.6,
                zorder=3,
                label="one seed" if y == ys[0] else None,
            )
            # Above the bar, over its span: clear of the seed dots inside the bar.
            ax.annotate(
                f"mean {m:+.1f}%",
                (m, y + 0.32),
                ha="right" if m >= 0 else "left",
                va="bottom",
                fontsize=8,
            )
        pad = 0.12 * max(hi - lo, 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_ylim(-0.5, len(labels) - 0.25)
        ax.set_xlabel(f"change in {name} vs {baseline} (%), negative = faster")
        ax.set_title(name, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [policy_label(lb, oracles) for lb in labels])
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(
        figure_title(
            f"Paired change vs {baseline}: same jobs per seed; bar = mean over seeds", context
        ),
        fontsize=9,
    )
    return save_figure(plt, fig, path)


def simulation_figures(
    jcts: Mapping[str, Sequence[np.ndarray]],
    per_seed: Sequence[Mapping[str, Any]],
    folder: str | Path,
    context: str,
    oracles: Collection[str] = (),
    prefix: str = "",
) -> list[Path]:
    """The figures of one simulation run (one engine, cost and load) written into ``folder``."""
    d = Path(folder)
    out = [
        jct_ccdf(jcts, d / f"{prefix}jct_ccdf.png", context, oracles),
        mean_p99_bars(per_seed, d / f"{prefix}jct_mean_p99.png", context, oracles),
    ]
    paired = paired_changes(per_seed, d / f"{prefix}paired_vs_fcfs.png", context, oracles)
    return out if paired is None else [*out, paired]
