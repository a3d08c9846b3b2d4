"""Request sources: where prompts and (true) output lengths come from.

A source loads into a :class:`Pool`: columnar arrays of prompt and output token
counts, plus what the source also knows (timestamps, prompt text, prompt ids,
its own predictions). Workloads sample requests from a pool (see ``build.py``).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.estimate import LengthEstimate
from ssjf.workload.arrivals import parse_timestamps
from ssjf.workload.data import DataError, data_file

#: The SSJF paper's length classes: upper bucket edges in tokens (data/README.md).
PAPER_CLASS_EDGES: dict[int, tuple[float, ...]] = {
    3: (141.0, 503.0, math.inf),
    5: (42.0, 141.0, 294.0, 503.0, math.inf),
}


def class_points(edges: Sequence[float]) -> tuple[float, ...]:
    """A point estimate per length class: the midpoint of its bucket.

    The lowest bucket starts at 0. The open top bucket has no midpoint; we use
    its lower edge plus half the width of the bucket below it (607.5 tokens for
    the paper's 5 classes, 684 for 3), keeping points increasing with the class
    and never reading the true lengths (a class's median true length would leak them).
    """
    points: list[float] = []
    lo = 0.0
    prev_width = 0.0
    for hi in edges:
        if math.isinf(hi):
            points.append(lo + prev_width / 2 if prev_width > 0 else max(lo, 1.0) * 1.5)
        else:
            points.append((lo + hi) / 2)
            prev_width = hi - lo
            lo = hi
    return tuple(points)


@dataclass(slots=True)
class Pool:
    """Requests a workload can draw from, one entry per record (columnar)."""

    name: str
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    #: Arrival times in seconds from the first record (traces only).
    timestamps: np.ndarray | None = None
    prompts: list[str] | None = None
    #: Group ids for splits (the same prompt under several generators shares one).
    prompt_ids: np.ndarray | None = None
    #: The generating model's name per record (None = unknown).
    models: list[str | None] | None = None
    #: The source's own predictions (e.g. the paper's classes), one per record.
    estimates: list[LengthEstimate] | None = None
    #: Further per-record columns (e.g. the paper's predicted classes), kept aligned by ``take``.
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.output_tokens)

    def take(self, idx: np.ndarray) -> Pool:
        """A new pool with records ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        il = idx.tolist()
        return replace(
            self,
            prompt_tokens=self.prompt_tokens[idx],
            output_tokens=self.output_tokens[idx],
            timestamps=None if self.timestamps is None else self.timestamps[idx],
            prompts=None if self.prompts is None else [self.prompts[i] for i in il],
            prompt_ids=None if self.prompt_ids is None else self.prompt_ids[idx],
            models=None if self.models is None else [self.models[i] for i in il],
            estimates=None if self.estimates is None else [self.estimates[i] for i in il],
            columns={k: v[idx] for k, v in self.columns.items()},
            meta=dict(self.meta),
        )


# ---------------------------------------------------------------- parsing helpers


def _int_field(value: Any, *, file: str, line: int, name: str, minimum: int = 0) -> int:
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


def _open_text(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8", newline="")


def iter_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each CSV row; checks that ``required`` columns exist."""
    with _open_text(path) as fh:
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
    with _open_text(path) as fh:
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


def _get(row: Mapping[str, Any], key: str, *, file: str, line: int) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and key != "instruction"):
        raise DataError("missing value", file=file, line=line, field=key)
    return value


def _get_int(row: Mapping[str, Any], key: str, *, file: str, line: int, minimum: int = 0) -> int:
    """``row[key]`` as a checked integer token count (errors name file, line, field)."""
    value = _get(row, key, file=file, line=line)
    return _int_field(value, file=file, line=line, name=key, minimum=minimum)


# ---------------------------------------------------------------- sources


def load_azure(kind: str = "conv", path: str | Path | None = None) -> Pool:
    """Azure LLM inference trace 2023 (``conv`` or ``code``): arrivals and token counts."""
    if kind not in ("conv", "code"):
        raise ValueError(f"azure trace kind must be 'conv' or 'code', got {kind!r}")
    p = Path(path) if path is not None else data_file(f"traces/azure_llm_2023_{kind}.csv")
    cols = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
    stamps: list[str] = []
    stamp_lines: list[int] = []
    ctx: list[int] = []
    gen: list[int] = []
    name = str(p)
    for line, row in iter_csv(p, cols):
        stamps.append(_get(row, "TIMESTAMP", file=name, line=line))
        stamp_lines.append(line)
        ctx.append(_get_int(row, "ContextTokens", file=name, line=line))
        gen.append(_get_int(row, "GeneratedTokens", file=name, line=line, minimum=0))
    if not gen:
        raise DataError("no rows", file=p)
    times = parse_timestamps(stamps, file=name, lines=stamp_lines)
    order = np.argsort(times, kind="stable")
    # A few Azure rows report 0 generated tokens; every job emits at least one.
    out = np.maximum(np.asarray(gen, dtype=np.int64), 1)
    return Pool(
        name=f"azure-{kind}",
        prompt_tokens=np.asarray(ctx, dtype=np.int64)[order],
        output_tokens=out[order],
        timestamps=times[order],
        meta={"file": name, "token_unit": "Azure service tokenizer"},
    )


def load_prompts(
    generator: str | None,
    relpath: str = "prompts/alpaca_eval.jsonl.gz",
    path: str | Path | None = None,
) -> Pool:
    """A prompt/response collection (AlpacaEval by default) with real output lengths.

    ``generator`` selects one LLM's responses (None keeps every generator's).
    """
    p = Path(path) if path is not None else data_file(relpath)
    name = str(p)
    prompts: list[str] = []
    pids: list[int] = []
    ptoks: list[int] = []
    otoks: list[int] = []
    models: list[str | None] = []
    seen: set[str] = set()
    pid_index: dict[Any, int] = {}
    for line, rec in iter_jsonl(p):
        gen = rec.get("generator")
        if gen is not None:
            seen.add(str(gen))
        if generator is not None and gen != generator:
            continue
        text = rec.get("instruction")
        if not isinstance(text, str):
            raise DataError("missing or non-text value", file=name, line=line, field="instruction")
        pid = _get(rec, "prompt_id", file=name, line=line)
        prompts.append(text)
        pids.append(pid_index.setdefault(pid, len(pid_index)))
        ptoks.append(_get_int(rec, "prompt_tokens", file=name, line=line))
        otoks.append(_get_int(rec, "output_tokens", file=name, line=line))
        models.append(None if gen is None else str(gen))
    if not otoks:
        if generator is not None:
            known = ", ".join(sorted(seen)) or "none"
            raise DataError(
                f"no records for generator {generator!r}; generators: {known}", file=name
            )
        raise DataError("no records", file=name)
    return Pool(
        name=Path(relpath).name.split(".")[0] + (f":{generator}" if generator else ""),
        prompt_tokens=np.asarray(ptoks, dtype=np.int64),
        output_tokens=np.maximum(np.asarray(otoks, dtype=np.int64), 1),
        prompts=prompts,
        prompt_ids=np.asarray(pids, dtype=np.int64),
        models=models,
        meta={"file": name, "token_unit": "mistral-7b-v0.1 SentencePiece tokens"},
    )


def load_alpaca(generator: str | None, path: str | Path | None = None) -> Pool:
    """AlpacaEval prompts with one generator's real output lengths."""
    return load_prompts(generator, "prompts/alpaca_eval.jsonl.gz", path)


def load_paper_predictions(num_classes: int = 5, path: str | Path | None = None) -> Pool:
    """The SSJF paper's predictions: true length + their BERT predictor's class.

    Each record's estimate is its class's bucket midpoint (:func:`class_points`).
    The files carry no prompt sizes; prompt_tokens is 0.
    """
    if num_classes not in PAPER_CLASS_EDGES:
        raise ValueError(f"the paper's predictions come in 3 or 5 classes, not {num_classes}")
    rel = f"predictions/ssjf_lmsys_vicuna13b_{num_classes}class.csv"
    p = Path(path) if path is not None else data_file(rel)
    name = str(p)
    points = class_points(PAPER_CLASS_EDGES[num_classes])
    by_class = [LengthEstimate(point=v) for v in points]
    true: list[int] = []
    classes: list[int] = []
    for line, row in iter_csv(p, ("output_token_length", "predicted_length")):
        true.append(_get_int(row, "output_token_length", file=name, line=line))
        c = _get_int(row, "predicted_length", file=name, line=line)
        if c >= num_classes:
            raise DataError(
                f"class {c} out of range for {num_classes} classes",
                file=name,
                line=line,
                field="predicted_length",
            )
        classes.append(c)
    if not true:
        raise DataError("no rows", file=name)
    cls_arr = np.asarray(classes, dtype=np.int64)
    return Pool(
        name=f"paper:{num_classes}class",
        prompt_tokens=np.zeros(len(true), dtype=np.int64),
        output_tokens=np.maximum(np.asarray(true, dtype=np.int64), 1),
        estimates=[by_class[c] for c in classes],
        columns={"predicted_class": cls_arr},
        meta={
            "file": name,
            "class_points": points,
            "token_unit": "vicuna-13b tokens",
        },
    )


#: Fields a generic table can declare, and what each means.
TABLE_FIELDS = {
    "prompt_tokens": "prompt size in tokens (default 0)",
    "output_tokens": "true output length in tokens (required)",
    "arrival": "arrival timestamp (seconds or 'YYYY-MM-DD HH:MM:SS')",
    "prompt": "prompt text",
    "predicted": "a predicted output length in tokens",
    "model": "the generating model's name",
    "prompt_id": "group id for splits",
}


def parse_columns(spec: str) -> dict[str, str]:
    """``prompt_tokens=ctx,output_tokens=gen`` -> {field: column}."""
    out: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not col:
            raise ValueError(f"column mapping {part!r}: expected FIELD=COLUMN")
        if key not in TABLE_FIELDS:
            raise ValueError(
                f"unknown field {key!r} in column mapping; fields: {', '.join(TABLE_FIELDS)}"
            )
        out[key] = col
    return out


def load_table(path: str | Path, columns: Mapping[str, str] | None = None) -> Pool:
    """Generic CSV or JSONL (optionally .gz) with declared columns.

    ``columns`` maps fields (:data:`TABLE_FIELDS`) to column names; unmapped fields
    default to their own name when present. ``output_tokens`` is required.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", file=p)
    name = str(p)
    mapping = {k: k for k in TABLE_FIELDS}
    mapping.update(columns or {})
    is_jsonl = ".jsonl" in p.suffixes or ".json" in p.suffixes
    rows: Iterator[tuple[int, Mapping[str, Any]]] = (
        iter_jsonl(p) if is_jsonl else iter_csv(p, [mapping["output_tokens"]])
    )
    explicit = set(columns or {})
    ptoks: list[int] = []
    otoks: list[int] = []
    stamps: list[str] = []
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
            _int_field(
                _get(row, mapping["output_tokens"], file=name, line=line),
                file=name,
                line=line,
                name=mapping["output_tokens"],
            )
        )
        if "prompt_tokens" in present:
            col = mapping["prompt_tokens"]
            ptoks.append(
                _int_field(_get(row, col, file=name, line=line), file=name, line=line, name=col)
            )
        if "arrival" in present:
            stamps.append(str(_get(row, mapping["arrival"], file=name, line=line)))
            stamp_lines.append(line)
        if "prompt" in present:
            prompts.append(str(row.get(mapping["prompt"]) or ""))
        if "predicted" in present:
            col = mapping["predicted"]
            raw = _get(row, col, file=name, line=line)
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
    if stamps:
        times = parse_timestamps(stamps, file=name, lines=stamp_lines, field=mapping["arrival"])
    pool = Pool(
        name=p.name,
        prompt_tokens=np.asarray(ptoks, dtype=np.int64) if ptoks else np.zeros(n, dtype=np.int64),
        output_tokens=np.maximum(np.asarray(otoks, dtype=np.int64), 1),
        timestamps=times,
        prompts=prompts or None,
        prompt_ids=pid_arr,
        models=models or None,
        estimates=[LengthEstimate(point=v) for v in preds] if preds else None,
        meta={"file": name},
    )
    if times is not None:
        order = np.argsort(times, kind="stable")
        pool = pool.take(order)
    return pool
