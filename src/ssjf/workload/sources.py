"""Request sources: where prompts and (true) output lengths come from.

Each loader reads one kind of file into a :class:`~ssjf.workload.pool.Pool`:
the Azure traces, the prompt/response collections, the SSJF paper's
predictions; generic tables are in :mod:`ssjf.workload.table`. Workloads sample
requests from a pool (see ``build.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssjf.datadir import DataError, data_file
from ssjf.estimate import LengthEstimate
from ssjf.workload.arrivals import parse_timestamps
from ssjf.workload.pool import Pool
from ssjf.workload.readers import get_int, get_value, iter_csv, iter_jsonl
from ssjf.workload.table import TABLE_FIELDS, load_table, parse_columns

# Pool and the table loader are re-exported: callers import every source from here.
__all__ = [
    "PAPER_CLASS_EDGES",
    "TABLE_FIELDS",
    "Pool",
    "class_points",
    "load_alpaca",
    "load_azure",
    "load_paper_predictions",
    "load_prompts",
    "load_table",
    "parse_columns",
]

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
        stamps.append(get_value(row, "TIMESTAMP", file=name, line=line))
        stamp_lines.append(line)
        ctx.append(get_int(row, "ContextTokens", file=name, line=line))
        gen.append(get_int(row, "GeneratedTokens", file=name, line=line, minimum=0))
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
        pid = get_value(rec, "prompt_id", file=name, line=line)
        prompts.append(text)
        pids.append(pid_index.setdefault(pid, len(pid_index)))
        ptoks.append(get_int(rec, "prompt_tokens", file=name, line=line))
        otoks.append(get_int(rec, "output_tokens", file=name, line=line))
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
        true.append(get_int(row, "output_token_length", file=name, line=line))
        c = get_int(row, "predicted_length", file=name, line=line)
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
