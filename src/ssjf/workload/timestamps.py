"""Timestamp columns -> seconds since the earliest record.

Accepted per value:

* ISO 8601 date-times, as :meth:`datetime.fromisoformat` reads them:
  ``2025-12-06T06:08:32.038Z``, ``2025-12-06 06:08:32+05:30``, any number of
  fractional digits (kept to the microsecond); no offset means UTC;
* numbers in a unit: ``s``, ``ms``, ``us`` or ``ns``. Given explicitly, or, when
  not, detected by magnitude: an epoch in milliseconds is about 1.7e12, and no
  real log has seconds past 1e11 (the year 5138), so larger numbers are read as
  ms, us or ns and the caller gets a note to print. Small numbers (relative
  times) stay seconds: their unit cannot be told, which is what the option is for.

Each value is kept as whole seconds (int) plus a fraction until the earliest is
subtracted, so nanosecond epochs (1.7e18) lose nothing to float rounding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ssjf.datadir import DataError

#: Counts per second of each unit of numeric timestamps.
TIME_UNITS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: Smallest magnitude read as each unit when none is given (epoch 1e11 s is the year 5138).
_DETECT = (("ns", 1e17), ("us", 1e14), ("ms", 1e11))

_INT = re.compile(r"[+-]?\d+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Timestamps:
    """Parsed timestamps and how their numbers were read."""

    #: Seconds since the earliest value.
    seconds: np.ndarray
    #: Unit applied to the numeric values (None when every value was a date-time).
    unit: str | None
    #: True when ``unit`` was guessed from the magnitude rather than given.
    detected: bool
    #: Largest numeric magnitude seen (0 when none).
    largest: float

    def note(self, file: str | None, field: str) -> str | None:
        """One line saying how numbers were read, when the unit was guessed as not seconds."""
        if not self.detected or self.unit in (None, "s"):
            return None
        where = f"{file}: " if file else ""
        assert self.unit is not None
        return (
            f"{where}{field!r} read as epoch {_UNIT_NAMES[self.unit]} (largest {self.largest:.3g}); "
            "timestamp_unit=s|ms|us|ns in the column spec overrides"
        )


def detect_unit(largest: float) -> str:
    """The unit of numeric timestamps whose largest magnitude is ``largest`` (see module doc)."""
    for unit, floor in _DETECT:
        if largest >= floor:
            return unit
    return "s"


def read_timestamps(
    values: Sequence[object],
    *,
    file: str | None = None,
    lines: Sequence[int] | None = None,
    field: str = "TIMESTAMP",
    unit: str | None = None,
) -> Timestamps:
    """Parse ``values`` (date-time strings and/or numbers) to seconds since the earliest."""
    if unit is not None and unit not in TIME_UNITS:
        raise ValueError(f"timestamp unit {unit!r}: use one of {', '.join(TIME_UNITS)}")
    whole: list[int] = []
    frac: list[float] = []
    numeric: list[tuple[int, int | float]] = []  # (position, raw number) to scale later
    for i, raw in enumerate(values):
        parsed = _parse_one(raw)
        if parsed is None:
            raise DataError(
                f"bad timestamp {raw!r}: expected an ISO 8601 date-time "
                "(e.g. 2025-12-06T06:08:32.038Z) or a number",
                file=file,
                line=lines[i] if lines is not None else None,
                field=field,
            )
        if isinstance(parsed, tuple):
            whole.append(parsed[0])
            frac.append(parsed[1])
        else:
            numeric.append((i, parsed))
            whole.append(0)
            frac.append(0.0)
    largest = max((abs(v) for _, v in numeric), default=0.0)
    used = unit if unit is not None else (detect_unit(float(largest)) if numeric else None)
    if numeric:
        assert used is not None
        per_s = TIME_UNITS[used]
        for i, v in numeric:
            if isinstance(v, int):
                w, rem = divmod(v, per_s)
                whole[i], frac[i] = w, rem / per_s
            else:
                secs = v / per_s
                w = math.floor(secs)
                whole[i], frac[i] = w, secs - w
    out = np.zeros(len(whole), dtype=np.float64)
    if whole:
        base = min(whole)
        out = np.asarray([w - base for w in whole], dtype=np.float64) + np.asarray(frac)
        out -= out.min()
    return Timestamps(
        seconds=out, unit=used, detected=unit is None and bool(numeric), largest=float(largest)
    )


def parse_timestamps(
    values: Sequence[object],
    *,
    file: str | None = None,
    lines: Sequence[int] | None = None,
    field: str = "TIMESTAMP",
    unit: str | None = None,
) -> np.ndarray:
    """Seconds since the earliest of ``values`` (see :func:`read_timestamps`)."""
    return read_timestamps(values, file=file, lines=lines, field=field, unit=unit).seconds


def _parse_one(raw: object) -> tuple[int, float] | int | float | None:
    """(whole epoch seconds, fraction) for a date-time, the number for a number, None if neither."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw if math.isfinite(raw) else None
    text = str(raw).strip()
    if _INT.fullmatch(text):
        return int(text)
    try:
        num = float(text)
    except ValueError:
        return _parse_datetime(text)
    return num if math.isfinite(num) else None


def _parse_datetime(text: str) -> tuple[int, float] | None:
    try:
        dt = datetime.fromisoformat(text)  # 3.11: 'Z', offsets, any number of digits
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return delta.days * 86_400 + delta.seconds, delta.microseconds / 1e6
