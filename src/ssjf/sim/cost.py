"""Step cost models: how long one engine iteration takes.

An engine step processes ``prefill_tokens`` prompt tokens (whole prompts or
chunks) and one token for each decoding sequence; ``num_seqs`` sequences take
part, they attend over ``context_tokens`` tokens already in the KV cache, and
``new_seqs`` of them finish their prefill in this step (emitting their first
token). Engines only ever call :meth:`CostModel.step_time` and the two
closed-form helpers for runs of pure decode steps, which is what lets the
continuous engine skip from event to event instead of stepping.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ssjf.sim.registry import register_cost

_FIELDS = ("prefill_tokens", "num_seqs", "context_tokens", "new_seqs", "seconds")


class CostModel(ABC):
    """Time of one engine step; subclasses may override the run helpers with closed forms."""

    @abstractmethod
    def step_time(
        self, prefill_tokens: int, num_seqs: int, context_tokens: int, new_seqs: int = 0
    ) -> float:
        """Seconds for one step."""

    def decode_run_time(self, num_seqs: int, context_tokens: int, steps: int) -> float:
        """Seconds for ``steps`` pure decode steps; context grows by ``num_seqs`` per step."""
        total = 0.0
        ctx = context_tokens
        for _ in range(steps):
            total += self.step_time(0, num_seqs, ctx, 0)
            ctx += num_seqs
        return total

    def decode_steps_to_reach(self, num_seqs: int, context_tokens: int, seconds: float) -> int:
        """Fewest whole decode steps whose total time is ``>= seconds`` (0 if ``seconds <= 0``).

        Generic version: doubling then bisection on :meth:`decode_run_time`, which
        is non-decreasing in ``steps`` because step times are non-negative.
        """
        if seconds <= 0:
            return 0
        hi = 1
        while self.decode_run_time(num_seqs, context_tokens, hi) < seconds:
            if self.step_time(0, num_seqs, context_tokens, 0) <= 0 and hi > 1 << 40:
                raise ValueError("decode steps take no time: the target is never reached")
            hi *= 2
        lo = hi // 2  # run_time(lo) < seconds (or lo == 0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.decode_run_time(num_seqs, context_tokens, mid) >= seconds:
                hi = mid
            else:
                lo = mid
        return hi

    def serial_job_time(self, prompt_tokens: int, output_tokens: int) -> float:
        """Seconds to serve one request alone: its prefill step, then its decode steps."""
        first = self.step_time(prompt_tokens, 1, 0, 1)
        return first + self.decode_run_time(1, prompt_tokens, output_tokens - 1)


@register_cost("affine")
@dataclass(frozen=True, slots=True)
class AffineCost(CostModel):
    """``t = a + b*prefill_tokens + c*num_seqs + d*context_tokens + e*new_seqs`` seconds."""

    usage: ClassVar[tuple[str, ...]] = ("affine", "affine:FILE.json")

    a: float = 0.0  # fixed per step (kernel launches, weight reads)
    b: float = 0.0  # per prompt token processed (prefill compute)
    c: float = 0.0  # per sequence in the step (sampling, per-seq overheads)
    d: float = 0.0  # per context token attended (KV reads)
    e: float = 0.0  # per sequence finishing its prefill (the paper's fixed 0.1 s)

    def __post_init__(self) -> None:
        for name in ("a", "b", "c", "d", "e"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"AffineCost.{name} must be finite and >= 0, got {value!r}")

    def step_time(
        self, prefill_tokens: int, num_seqs: int, context_tokens: int, new_seqs: int = 0
    ) -> float:
        """Seconds for one step."""
        return (
            self.a
            + self.b * prefill_tokens
            + self.c * num_seqs
            + self.d * context_tokens
            + self.e * new_seqs
        )

    def decode_run_time(self, num_seqs: int, context_tokens: int, steps: int) -> float:
        """Closed form: ``k*(a + c*n + d*C0) + d*n*k*(k-1)/2``."""
        k = steps
        if k <= 0:
            return 0.0
        first = self.a + self.c * num_seqs + self.d * context_tokens
        return k * first + self.d * num_seqs * (k * (k - 1) // 2)

    def decode_steps_to_reach(self, num_seqs: int, context_tokens: int, seconds: float) -> int:
        """Closed form (root of the quadratic), then nudged so the answer is exact."""
        if seconds <= 0:
            return 0
        first = self.a + self.c * num_seqs + self.d * context_tokens
        slope = self.d * num_seqs  # each step is this much longer than the previous
        if slope > 0:
            # k*first + slope*k*(k-1)/2 = T  ->  (slope/2) k^2 + (first - slope/2) k - T = 0
            p = first - slope / 2
            k = math.ceil((-p + math.sqrt(p * p + 2 * slope * seconds)) / slope)
        elif first > 0:
            k = math.ceil(seconds / first)
        else:
            raise ValueError("decode steps take no time: the target is never reached")
        k = max(k, 1)
        # Floating point may put the root one step off: fix it against the run time itself.
        run = self.decode_run_time
        while k > 1 and run(num_seqs, context_tokens, k - 1) >= seconds:
            k -= 1
        while run(num_seqs, context_tokens, k) < seconds:
            k += 1
        return k

    @classmethod
    def from_spec(cls, spec: str, arg: str) -> AffineCost:
        """``affine``: :func:`default_affine`; ``affine:FILE.json``: :meth:`from_file`."""
        return cls.from_file(arg) if arg else default_affine()

    @classmethod
    def from_file(cls, path: str | Path) -> AffineCost:
        """Read ``{"a":..,"b":..,"c":..,"d":..,"e":..}`` (missing keys are 0) from JSON."""
        p = Path(path)
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError:
            raise ValueError(f"{p}: cost model file not found") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{p}: expected a JSON object with keys a, b, c, d, e")
        unknown = sorted(set(raw) - {"a", "b", "c", "d", "e"})
        if unknown:
            raise ValueError(f"{p}: unknown field(s) {unknown}; allowed: a, b, c, d, e")
        values: dict[str, float] = {}
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{p}: field {name!r} must be a number, got {value!r}")
            values[name] = float(value)
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None

    @classmethod
    def fit(cls, measurements: Iterable[Sequence[float]]) -> AffineCost:
        """Least-squares fit (non-negative coefficients) to measured steps.

        Each measurement is ``(prefill_tokens, num_seqs, context_tokens, new_seqs,
        seconds)``. Coefficients are constrained to be ``>= 0`` (a negative cost
        per token has no physical meaning and breaks the run-time helpers).
        Columns that never vary (e.g. ``new_seqs`` always 0) get coefficient 0.
        """
        rows: list[list[float]] = []
        for i, m in enumerate(measurements):
            values = list(m)
            if len(values) != 5:
                raise ValueError(f"measurement {i}: expected 5 values {_FIELDS}, got {len(values)}")
            for name, v in zip(_FIELDS, values, strict=True):
                if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                    raise ValueError(
                        f"measurement {i}: field {name!r} must be a finite number >= 0, got {v!r}"
                    )
            rows.append([float(v) for v in values])
        if len(rows) < 2:
            raise ValueError(f"AffineCost.fit needs at least 2 measurements, got {len(rows)}")
        data = np.asarray(rows)
        x = np.column_stack([np.ones(len(data)), data[:, :4]])
        y = data[:, 4]
        active = [0] + [j for j in range(1, 5) if x[:, j].any()]
        coef = _nnls(x[:, active], y)
        full = np.zeros(5)
        full[active] = coef
        return cls(*(float(v) for v in full))


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares by active-set elimination (tiny problems only)."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    keep = list(range(xa.shape[1]))
    while True:
        coef, *_ = np.linalg.lstsq(xa[:, keep], ya, rcond=None)
        if (coef >= -1e-15).all() or len(keep) == 1:
            out = np.zeros(xa.shape[1])
            out[keep] = np.clip(coef, 0.0, None)
            return out
        # Drop the most negative coefficient and refit: fine for 5 columns.
        keep.pop(int(np.argmin(coef)))


def paper_linear() -> AffineCost:
    """The SSJF paper's model: a serial job of L output tokens costs 0.1 + 0.02*L seconds.

    The prefill step (which emits the first token) costs ``0.02 + 0.1``, each
    further decode step ``0.02``, whatever the batch.
    """
    return AffineCost(a=0.02, e=0.1)


@register_cost("paper")
class _Paper:
    """The ``paper`` spec entry: :func:`paper_linear`, no arguments."""

    usage = ("paper",)

    @classmethod
    def from_spec(cls, spec: str, arg: str) -> AffineCost:
        if arg:
            raise ValueError(f"cost spec {spec!r}: 'paper' takes no arguments")
        return paper_linear()


def default_affine() -> AffineCost:
    """A 7B-13B-class model on one 80 GB GPU; derivation in ``docs/simulator.md``.

    Fitted to splitwise's measured llama2-70b steps on A100-80GB with tensor
    parallel 8 (``shared/data/perf/splitwise_perf_model.csv``, batch <= 32): 70B
    weights over 8 GPUs is ~9B parameters of work per GPU per token, like a
    7B-13B model on one GPU. Two stages, because one joint least-squares fit lets
    the long prefill rows swamp the fixed per-step cost: decode rows give
    ``a, c, d``; prefill rows minus that decode cost give ``b, e``.
    """
    return AffineCost(**DEFAULT_AFFINE)


#: Coefficients of :func:`default_affine`, seconds (rounded to 3 significant digits).
DEFAULT_AFFINE: dict[str, float] = {
    "a": 4.45e-2,  # 44.5 ms per step: the measured batch-1 decode step
    "b": 1.70e-4,  # 0.17 ms per prompt token
    "c": 1.38e-4,  # 0.14 ms per sequence in the step
    "d": 2.64e-7,  # 0.26 us per context token attended
    "e": 2.27e-2,  # 22.7 ms per prefill finishing in the step
}
