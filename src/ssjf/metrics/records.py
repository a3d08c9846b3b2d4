"""Per-request records: one row per request and run, written as JSONL, CSV or Parquet."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.metrics.summary import RunArrays

#: Columns of the records table, in order.
RECORD_COLUMNS = (
    "policy",
    "engine",
    "seed",
    "load",
    "request",
    "arrival",
    "first_scheduled",
    "first_token",
    "completion",
    "jct",
    "queue_wait",
    "ttft",
    "prompt_tokens",
    "output_tokens",
    "predicted_tokens",
    "preemptions",
)


def record_columns(run: RunArrays, labels: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Columns for one run; ``labels`` (policy, engine, seed, load) repeat on every row."""
    arrival = np.asarray(run.arrival, dtype=np.float64)
    n = arrival.size
    cols: dict[str, list[Any]] = {}
    for key in ("policy", "engine", "seed", "load"):
        cols[key] = [labels.get(key)] * n
    cols["request"] = list(range(n))
    completion = np.asarray(run.completion, dtype=np.float64)
    first_sched = np.asarray(run.first_scheduled, dtype=np.float64)
    first_tok = np.asarray(run.first_token, dtype=np.float64)
    cols["arrival"] = arrival.tolist()
    cols["first_scheduled"] = first_sched.tolist()
    cols["first_token"] = first_tok.tolist()
    cols["completion"] = completion.tolist()
    cols["jct"] = (completion - arrival).tolist()
    cols["queue_wait"] = (first_sched - arrival).tolist()
    cols["ttft"] = (first_tok - arrival).tolist()
    cols["prompt_tokens"] = (
        np.asarray(getattr(run, "prompt_tokens", np.zeros(n))).astype(int).tolist()
    )
    cols["output_tokens"] = np.asarray(run.output_tokens).astype(int).tolist()
    pred = getattr(run, "predicted_tokens", None)
    cols["predicted_tokens"] = (
        np.asarray(pred, dtype=np.float64).tolist() if pred is not None else [math.nan] * n
    )
    cols["preemptions"] = np.asarray(run.preemptions).astype(int).tolist()
    return cols


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_records(path: str | Path, tables: Sequence[dict[str, list[Any]]]) -> Path:
    """Write record tables (from :func:`record_columns`) to ``path`` by extension.

    ``.jsonl`` (default for unknown extensions), ``.csv``, or ``.parquet`` (needs
    pyarrow).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise RuntimeError(
                "writing .parquet records needs pyarrow (pip install 'ssjf[parquet]'); "
                "use a .jsonl or .csv file instead"
            ) from None
        merged = {c: [v for t in tables for v in t[c]] for c in RECORD_COLUMNS}
        pq.write_table(pa.table(merged), p)
        return p
    with p.open("w", encoding="utf-8", newline="") as fh:
        if suffix == ".csv":
            writer = csv.writer(fh)
            writer.writerow(RECORD_COLUMNS)
            for t in tables:
                writer.writerows(zip(*(t[c] for c in RECORD_COLUMNS), strict=True))
        else:
            for t in tables:
                for row in zip(*(t[c] for c in RECORD_COLUMNS), strict=True):
                    fh.write(
                        json.dumps({c: _clean(v) for c, v in zip(RECORD_COLUMNS, row, strict=True)})
                    )
                    fh.write("\n")
    return p
