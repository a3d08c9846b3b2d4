"""What every figure shares: lazy pyplot, policy colours and labels, titles, saving."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssjf.bench.runner import PolicyEntry

#: Appended to an oracle policy's label in every figure and table of a report.
ORACLE_SUFFIX = " (oracle)"
#: Line styles of oracle policies in the CCDF, in turn.
ORACLE_DASHES: tuple[Any, ...] = ((0, (5, 2)), (0, (6, 2, 1, 2)), (0, (2, 1.5)))
#: FCFS is the reference every figure compares against: drawn grey.
BASELINE_COLOR = "tab:gray"
PALETTE = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
)


def load_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a RuntimeError naming the extra without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'ssjf[plot]'") from None
    return plt


def oracle_labels(entries: Iterable[PolicyEntry]) -> frozenset[str]:
    """Labels of the entries whose policy class reads true lengths (``oracle = True``)."""
    from ssjf.policies import policy_class

    return frozenset(e.label for e in entries if policy_class(e.policy).oracle)


def policy_label(label: str, oracles: Collection[str] = ()) -> str:
    """``label``, with " (oracle)" when it names an oracle policy."""
    return label + ORACLE_SUFFIX if label in oracles else label


def figure_context(
    workload: str,
    engine: str,
    cost: str,
    *,
    load: float | None = None,
    rate: float | None = None,
    requests: int | None = None,
    seeds: int | None = None,
) -> str:
    """The subtitle every figure carries: workload, engine, cost model, load (or rate), size."""
    parts = [str(workload), f"engine {engine}", f"cost {cost}"]
    if rate is not None:
        parts.append(f"rate {rate:g} req/s")
    elif load is not None:
        parts.append(f"load {load:g}")
    if requests is not None and seeds is not None:
        parts.append(f"{requests} requests × {seeds} seeds")
    return " · ".join(parts)


def policy_colors(labels: Sequence[str], baseline: str) -> dict[str, str]:
    """label -> colour: the palette in turn, the baseline grey (the same across a page's figures)."""
    others = [label for label in labels if label != baseline]
    out = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(others)}
    out[baseline] = BASELINE_COLOR
    return out


def figure_title(title: str, context: str, width: int = 95) -> str:
    """``title`` over ``context``, the context wrapped at its " · " separators."""
    lines: list[str] = []
    for part in context.split(" · ") if context else []:
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join([title, *lines])


def save_figure(plt: Any, fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made as needed) and free it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:  # figures made with layout="constrained" lay out alone
        fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
