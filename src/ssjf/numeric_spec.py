"""One parser for ``key=value`` specs of numeric settings (calibration, retraining).

``"on"`` (or empty, ``true``, ``default``) means the defaults; otherwise items
``key=value`` separated by any of ``seps``, keys looked up in a table of short
names (``-`` read as ``_``), integer fields parsed as int, the rest as float.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def parse_numeric_spec(cls: type[T], spec: str, keys: dict[str, str], what: str, seps: str) -> T:
    """``cls(**values)`` from ``spec``; ValueError naming ``what`` and the known keys."""
    spec = spec.strip()
    if spec.lower() in ("", "on", "true", "default"):
        return cls()
    ints = {f.name for f in fields(cls) if f.type in ("int", int)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    text = spec
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    for item in (p.strip() for p in text.split(seps[0])):
        key, eq, value = item.partition("=")
        name = keys.get(key.strip().replace("-", "_"))
        if not eq or name is None:
            raise ValueError(
                f"{what} spec {spec!r}: expected key=value of {', '.join(sorted(keys))}"
            )
        try:
            values[name] = int(value) if name in ints else float(value)
        except ValueError:
            raise ValueError(f"{what} spec {spec!r}: {key}={value!r} is no number") from None
    return cls(**values)
