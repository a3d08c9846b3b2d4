"""Reading source files record by record: CSV and JSONL rows, checked fields.

Every error is a :class:`~ssjf.datadir.DataError` naming the file, line and field.
Text is decoded by the one rule of :mod:`ssjf.textio` (bad bytes become U+FFFD).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ssjf.datadir import DataError
from ssjf.textio import open_text


def int_field(value: Any, *, file: str, line: int, name: str, minimum: int = 0) -> int:
    """``value`` as an integer token count >= ``minimum`` (errors name file, line, field)."""
    if isinstance(value, bool):
        raise DataError(
            f"expected an integer token count, got {value!r}", file=file, line=line, field=name
        )
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    else:
        text = str(value).strip() if value is not None else ""
        try:
            f = float(text)
        except ValueError:
            f = math.nan
        if not (math.isfinite(f) and f.is_integer()):
            raise DataError(
                f"expected an integer token count, got {value!r}", file=file, line=line, field=name
            )
        out = int(f)
    if out < minimum:
        raise DataError(f"must be >= {minimum}, got {out}", file=file, line=line, field=name)
    return out


def iter_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each CSV row; checks that ``required`` columns exist."""
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in required:
            if col not in header:
                raise DataError(
                    f"missing column (header has {', '.join(header) or 'nothing'})",
                    file=path,
                    line=1,
                    field=col,
                )
        for row in reader:
            yield reader.line_num, row


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-empty JSON line."""
    with open_text(path) as fh:
        for i, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", file=path, line=i) from None
            if not isinstance(rec, dict):
                raise DataError("expected a JSON object", file=path, line=i)
            yield i, rec


def get_value(row: Mapping[str, Any], key: str, *, file: str, line: int) -> Any:
    """``row[key]``; a missing or blank value (blank ``instruction`` allowed) is an error."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and key != "instruction"):
        raise DataError("missing value", file=file, line=line, field=key)
    return value


def get_int(row: Mapping[str, Any], key: str, *, file: str, line: int, minimum: int = 0) -> int:
    """``row[key]`` as a checked integer token count (errors name file, line, field)."""
    value = get_value(row, key, file=file, line=line)
    return int_field(value, file=file, line=line, name=key, minimum=minimum)
