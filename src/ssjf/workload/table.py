"""Generic request tables: CSV or JSONL (optionally .gz) with declared columns."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.datadir import DataError
from ssjf.estimate import LengthEstimate
from ssjf.workload.pool import Pool
from ssjf.workload.readers import get_value, int_field, iter_csv, iter_jsonl
from ssjf.workload.timestamps import TIME_UNITS, read_timestamps

#: Fields a generic table can declare, and what each means.
TABLE_FIELDS = {
    "prompt_tokens": "prompt size in tokens (default 0)",
    "output_tokens": "true output length in tokens (required)",
    "arrival": "arrival timestamp (ISO 8601 like 2025-12-06T06:08:32.038Z, or a number)",
    "prompt": "prompt text",
    "predicted": "a predicted output length in tokens",
    "model": "the generating model's name",
    "prompt_id": "group id for splits",
}

#: Options a column spec may carry besides field mappings (``OPTION=VALUE``).
TABLE_OPTIONS = {
    "timestamp_unit": "unit of numeric arrivals: s | ms | us | ns (default: by magnitude)",
}


def parse_columns(spec: str) -> dict[str, str]:
    """``prompt_tokens=ctx,output_tokens=gen,timestamp_unit=ms`` -> {field or option: value}."""
    out: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not col:
            raise ValueError(f"column mapping {part!r}: expected FIELD=COLUMN")
        if key not in TABLE_FIELDS and key not in TABLE_OPTIONS:
            raise ValueError(
                f"unknown field {key!r} in column mapping; fields: "
                f"{', '.join([*TABLE_FIELDS, *TABLE_OPTIONS])}"
            )
        if key == "timestamp_unit" and col not in TIME_UNITS:
            raise ValueError(f"timestamp_unit={col}: use one of {', '.join(TIME_UNITS)}")
        out[key] = col
    return out


def load_table(path: str | Path, columns: Mapping[str, str] | None = None) -> Pool:
    """Generic CSV or JSONL (optionally .gz) with declared columns.

    ``columns`` maps fields (:data:`TABLE_FIELDS`) to column names; unmapped fields
    default to their own name when present. ``output_tokens`` is required.
    ``columns`` may also carry :data:`TABLE_OPTIONS`. One-line notes for the user
    (e.g. a guessed timestamp unit) go to ``pool.meta["notes"]``.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", file=p)
    name = str(p)
    options = {k: v for k, v in (columns or {}).items() if k in TABLE_OPTIONS}
    mapping = {k: k for k in TABLE_FIELDS}
    mapping.update({k: v for k, v in (columns or {}).items() if k not in TABLE_OPTIONS})
    is_jsonl = ".jsonl" in p.suffixes or ".json" in p.suffixes
    rows: Iterator[tuple[int, Mapping[str, Any]]] = (
        iter_jsonl(p) if is_jsonl else iter_csv(p, [mapping["output_tokens"]])
    )
    explicit = set(columns or {}) - set(TABLE_OPTIONS)
    ptoks: list[int] = []
    otoks: list[int] = []
    stamps: list[Any] = []
    stamp_lines: list[int] = []
    prompts: list[str] = []
    preds: list[float] = []
    models: list[str | None] = []
    pids: list[Any] = []
    present: set[str] = set()
    first_line = 0
    for line, row in rows:
        if not first_line:
            first_line = line
            # Which optional fields does this table have? Declared ones must exist.
            for key, col in mapping.items():
                if col in row:
                    present.add(key)
                elif key in explicit or key == "output_tokens":
                    raise DataError("missing column", file=name, line=line, field=col)
        otoks.append(
            int_field(
                get_value(row, mapping["output_tokens"], file=name, line=line),
                file=name,
                line=line,
                name=mapping["output_tokens"],
            )
        )
        if "prompt_tokens" in present:
            col = mapping["prompt_tokens"]
            ptoks.append(
                int_field(get_value(row, col, file=name, line=line), file=name, line=line, name=col)
            )
        if "arrival" in present:
            stamps.append(get_value(row, mapping["arrival"], file=name, line=line))
            stamp_lines.append(line)
        if "prompt" in present:
            prompts.append(str(row.get(mapping["prompt"]) or ""))
        if "predicted" in present:
            col = mapping["predicted"]
            raw = get_value(row, col, file=name, line=line)
            try:
                val = float(raw)
            except (TypeError, ValueError):
                val = math.nan
            if not (math.isfinite(val) and val >= 0):
                raise DataError(
                    f"expected a length >= 0, got {raw!r}", file=name, line=line, field=col
                )
            preds.append(val)
        if "model" in present:
            m = row.get(mapping["model"])
            models.append(None if m in (None, "") else str(m))
        if "prompt_id" in present:
            pids.append(row.get(mapping["prompt_id"]))
    if not otoks:
        raise DataError("no rows", file=name)
    n = len(otoks)
    pid_arr = None
    if pids:
        index: dict[Any, int] = {}
        pid_arr = np.asarray([index.setdefault(str(v), len(index)) for v in pids], dtype=np.int64)
    times = None
    notes: list[str] = []
    if stamps:
        parsed = read_timestamps(
            stamps,
            file=name,
            lines=stamp_lines,
            field=mapping["arrival"],
            unit=options.get("timestamp_unit"),
        )
        times = parsed.seconds
        note = parsed.note(name, mapping["arrival"])
        if note:
            notes.append(note)
    pool = Pool(
        name=p.name,
        prompt_tokens=np.asarray(ptoks, dtype=np.int64) if ptoks else np.zeros(n, dtype=np.int64),
        output_tokens=np.maximum(np.asarray(otoks, dtype=np.int64), 1),
        timestamps=times,
        prompts=prompts or None,
        prompt_ids=pid_arr,
        models=models or None,
        estimates=[LengthEstimate(point=v) for v in preds] if preds else None,
        meta={"file": name, "notes": notes},
    )
    if times is not None:
        order = np.argsort(times, kind="stable")
        pool = pool.take(order)
    return pool
