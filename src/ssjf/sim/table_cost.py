"""A cost model interpolating measured step times (the splitwise perf table)."""

from __future__ import annotations

import bisect
import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ssjf.datadir import data_file
from ssjf.sim.cost import CostModel
from ssjf.sim.registry import register_cost

#: The splitwise perf table, relative to the data directory.
SPLITWISE_CSV = "perf/splitwise_perf_model.csv"

_COLUMNS = ("model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time",
            "token_time", "tensor_parallel")  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Row:
    prompt_size: int
    batch_size: int
    token_size: int
    prompt_time_s: float
    token_time_s: float


def _read_rows(path: Path) -> dict[tuple[str, str, int], list[_Row]]:
    """Rows of a splitwise ``perf_model.csv`` grouped by (model, hardware, tensor_parallel)."""
    groups: dict[tuple[str, str, int], list[_Row]] = defaultdict(list)
    try:
        fh = path.open(newline="")
    except FileNotFoundError:
        raise ValueError(f"{path}: perf table not found") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: line 1: missing column(s) {missing}")
        for line, rec in enumerate(reader, start=2):
            field = ""
            try:
                field = "tensor_parallel"
                tp = int(rec[field])
                values = []
                for field in ("prompt_size", "batch_size", "token_size"):
                    values.append(int(rec[field]))
                times = []
                for field in ("prompt_time", "token_time"):
                    v = float(rec[field]) / 1000.0  # the table is in milliseconds
                    if not v >= 0:
                        raise ValueError
                    times.append(v)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}: line {line}: field {field!r}: bad value {rec.get(field)!r}"
                ) from None
            key = (rec["model"], rec["hardware"], tp)
            groups[key].append(_Row(values[0], values[1], values[2], times[0], times[1]))
    return groups


class _Curve:
    """Piecewise-linear y(x) through ``(0, 0)`` and the points; linear extrapolation above."""

    def __init__(self, points: dict[int, list[float]]) -> None:
        xs = sorted(points)
        self.xs = [0.0] + [float(x) for x in xs]
        self.ys = [0.0] + [sum(points[x]) / len(points[x]) for x in xs]

    def __call__(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= 0:
            return 0.0
        i = bisect.bisect_left(xs, x)
        if i == len(xs):
            i -= 1  # extrapolate with the last segment
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


@register_cost("table")
class TableCost(CostModel):
    """Step times interpolated from splitwise's measured prompt and token times.

    ``step_time = P(prefill_tokens) + D(num_seqs - new_seqs)`` where ``P(n)`` is the
    measured prompt (prefill) time for ``n`` prompt tokens in total
    (prompt_size x batch_size, averaged over repeats) and ``D(b)`` the measured
    per-token (decode) time at batch size ``b``; both are piecewise linear through
    the origin, extrapolated linearly past the last point. The table does not vary
    context length independently of batch, so context is ignored, which makes a
    run of decode steps cost exactly ``k * D(n)``. A request served alone costs
    ``prompt_time(p) + (L - 1) * token_time(1)``, the table's own end-to-end shape.
    """

    usage: ClassVar[tuple[str, ...]] = ("table:MODEL/HARDWARE/TP",)

    @classmethod
    def from_spec(cls, spec: str, arg: str) -> TableCost:
        """``table:MODEL/HARDWARE/TP``: the splitwise table's rows for that combination."""
        parts = arg.split("/")
        if len(parts) != 3:
            raise ValueError(f"cost spec {spec!r}: expected 'table:MODEL/HARDWARE/TP'")
        model, hardware, tp = parts
        try:
            tp_int = int(tp)
        except ValueError:
            raise ValueError(f"cost spec {spec!r}: TP must be an integer, got {tp!r}") from None
        # Data dir, else the user cache, else a download of the public table.
        return cls(Path(data_file(SPLITWISE_CSV)), model, hardware, tp_int)

    def __init__(self, path: str | Path, model: str, hardware: str, tensor_parallel: int) -> None:
        self.path = Path(path)
        groups = _read_rows(self.path)
        key = (model, hardware, int(tensor_parallel))
        if key not in groups:
            combos = ", ".join(f"{m}/{h}/{t}" for m, h, t in sorted(groups))
            raise ValueError(
                f"{self.path}: no rows for {model}/{hardware}/{tensor_parallel}; "
                f"available MODEL/HARDWARE/TP: {combos}"
            )
        self.model, self.hardware, self.tensor_parallel = key
        rows = groups[key]
        prefill: dict[int, list[float]] = defaultdict(list)
        decode: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            prefill[r.prompt_size * r.batch_size].append(r.prompt_time_s)
            decode[r.batch_size].append(r.token_time_s)
        self.prefill = _Curve(prefill)
        self.decode = _Curve(decode)

    def step_time(
        self, prefill_tokens: int, num_seqs: int, context_tokens: int, new_seqs: int = 0
    ) -> float:
        """Seconds for one step."""
        return self.prefill(prefill_tokens) + self.decode(max(num_seqs - new_seqs, 0))

    def decode_run_time(self, num_seqs: int, context_tokens: int, steps: int) -> float:
        """Closed form: context is ignored, so ``steps * D(num_seqs)``."""
        return steps * self.decode(num_seqs) if steps > 0 else 0.0

    def decode_steps_to_reach(self, num_seqs: int, context_tokens: int, seconds: float) -> int:
        """Closed form, nudged to be exact against :meth:`decode_run_time`."""
        if seconds <= 0:
            return 0
        per = self.decode(num_seqs)
        if per <= 0:
            raise ValueError("decode steps take no time: the target is never reached")
        k = max(1, int(seconds // per))
        while k > 1 and (k - 1) * per >= seconds:
            k -= 1
        while k * per < seconds:
            k += 1
        return k

    def __repr__(self) -> str:
        return f"TableCost({self.model}/{self.hardware}/{self.tensor_parallel})"


def splitwise_measurements(
    path: str | Path, model: str, hardware: str, tensor_parallel: int
) -> list[tuple[int, int, int, int, float]]:
    """Splitwise rows as ``AffineCost.fit`` measurements (prefill steps and decode steps).

    A prompt row is a step prefilling ``prompt_size * batch_size`` tokens for
    ``batch_size`` new sequences; a token row is a decode step of ``batch_size``
    sequences whose context averages ``prompt_size + token_size / 2`` tokens.
    """
    p = Path(path)
    groups = _read_rows(p)
    key = (model, hardware, int(tensor_parallel))
    if key not in groups:
        combos = ", ".join(f"{m}/{h}/{t}" for m, h, t in sorted(groups))
        raise ValueError(f"{p}: no rows for {model}/{hardware}/{tensor_parallel}; have {combos}")
    out: list[tuple[int, int, int, int, float]] = []
    for r in groups[key]:
        b = r.batch_size
        out.append((r.prompt_size * b, b, 0, b, r.prompt_time_s))
        out.append((0, b, b * (r.prompt_size + r.token_size // 2), 0, r.token_time_s))
    return out
