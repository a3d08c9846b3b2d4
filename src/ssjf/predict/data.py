"""Training/evaluation data for predictors: (prompt, output tokens, model, prompt id) records.

Sources:

* the prompt datasets in ``$SSJF_DATA_DIR/prompts/`` (:data:`PROMPT_DATASETS`:
  ``alpaca_eval``, ``flask``, ``sharegpt``, ``zeroeval``, ``gpteacher``, ``alpaca5k``,
  ``codealpaca2k``, ``routellm_gsm8k``): token counts there use the Mistral-7B 32k
  SentencePiece tokenizer;
* generic JSONL / CSV with ``prompt`` (or ``instruction``), ``output_tokens`` and optional
  ``model`` (or ``generator``) and ``prompt_id`` — gzip allowed, so a file in the shared
  collections' own record form loads as a path too;
* ShareGPT-format JSON and LMSYS-Chat-1M: see :mod:`ssjf.predict.chat_data`.

Bad records (missing or mistyped fields, empty text, absurd lengths) are
reported with file and line and skipped; with ``strict=True`` the first one
raises :class:`DataError`. Text is decoded by :mod:`ssjf.textio` (invalid bytes
become U+FFFD, which is kept, as in every other command). Censored records
(marked ``truncated``, or whose ``output_tokens`` reached their ``max_tokens``)
only tell a lower bound of the length: they are dropped and counted in
``LengthData.censored`` unless ``keep_censored=True``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssjf.datadir import DataError, data_file
from ssjf.predict.chat_data import load_lmsys, load_sharegpt_json
from ssjf.predict.records import MAX_OUTPUT_TOKENS, LengthData, Reporter
from ssjf.textio import open_text

# Re-exported: loaders, benches and tests import the dataset types from here.
__all__ = [
    "MAX_OUTPUT_TOKENS",
    "PROMPT_DATASETS",
    "PROMPT_DATASET_ALIASES",
    "PROMPT_DATASET_DOMAINS",
    "PROMPT_DATASET_UNIT",
    "DataError",
    "LengthData",
    "Reporter",
    "is_censored",
    "load_data",
    "load_prompt_dataset",
    "load_records_file",
    "prompt_dataset_path",
]

#: Token unit of the shared prompt datasets (shared/data/README.md).
PROMPT_DATASET_UNIT = "mistral-7b-v0.1 (32k SentencePiece)"
#: name -> (file under prompts/, field holding the sub-dataset name)
PROMPT_DATASETS: dict[str, tuple[str, str | None]] = {
    "alpaca_eval": ("alpaca_eval.jsonl.gz", "dataset"),
    "flask": ("flask.jsonl.gz", "task"),
    "sharegpt": ("sharegpt_sample.jsonl.gz", None),
    "zeroeval": ("zeroeval.jsonl.gz", "dataset"),
    "gpteacher": ("gpteacher.jsonl.gz", "dataset"),
    "alpaca5k": ("alpaca5k.jsonl.gz", None),
    "codealpaca2k": ("codealpaca2k.jsonl.gz", None),
    "routellm_gsm8k": ("routellm_gsm8k.jsonl.gz", None),
}
#: The collections' domains (shared/data/README.md): real user turns, benchmark or evaluation
#: prompts, and synthetic self-instruct pairs (one model wrote instruction and answer in one
#: pass; short, compressed answers that are not chat-serving lengths).
PROMPT_DATASET_DOMAINS: dict[str, str] = {
    "alpaca_eval": "evaluation",
    "flask": "evaluation",
    "sharegpt": "user",
    "zeroeval": "benchmark",
    "gpteacher": "synthetic",
    "alpaca5k": "synthetic",
    "codealpaca2k": "synthetic",
    "routellm_gsm8k": "benchmark",
}
#: Other names a collection is known by (its file's stem).
PROMPT_DATASET_ALIASES: dict[str, str] = {"sharegpt_sample": "sharegpt"}
#: Field names of the shared collections' record form, tried when a generic file lacks the
#: ``prompt`` / ``model`` fields.
FALLBACK_KEYS: dict[str, str] = {"prompt": "instruction", "model": "generator"}


def prompt_dataset_path(name: str) -> Path:
    """Where the prompt dataset ``name`` lives (data dir, else the download cache)."""
    if name not in PROMPT_DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(PROMPT_DATASETS)}")
    return data_file(f"prompts/{PROMPT_DATASETS[name][0]}")


def load_prompt_dataset(name: str, *, strict: bool = False) -> LengthData:
    """One of :data:`PROMPT_DATASETS` (records keep ``prompt_id`` for splits).

    ``datasets[i]`` is ``name`` or ``name/<sub-dataset>`` (a ZeroEval task, a FLASK task),
    and prompt ids are prefixed with ``name:`` so ids of two collections never collide.
    """
    name = PROMPT_DATASET_ALIASES.get(name, name)
    path = prompt_dataset_path(name)
    sub = PROMPT_DATASETS[name][1]
    data = LengthData(unit=PROMPT_DATASET_UNIT)
    rep = Reporter(data, strict)
    for where, rec in _iter_jsonl(path, rep):
        parsed = _parse_record(
            rec, where, rep, prompt_key="instruction", model_key="generator", need_model=True
        )
        if parsed is None:
            continue
        prompt, length, model = parsed
        pid = rec.get("prompt_id")
        if pid is None:
            rep.bad(where, "prompt_id", "missing")
            continue
        dataset = f"{name}/{rec[sub]}" if sub and rec.get(sub) else name
        data.append(prompt, length, model, f"{name}:{pid}", dataset)
    return data


def load_records_file(
    path: str | Path,
    *,
    strict: bool = False,
    prompt_key: str = "prompt",
    length_key: str = "output_tokens",
    model_key: str = "model",
    keep_censored: bool = False,
) -> LengthData:
    """Generic JSONL or CSV (optionally .gz) with prompt, output_tokens, optional model/prompt_id.

    A record without ``prompt_key`` / ``model_key`` is read with the shared collections'
    names (``instruction`` / ``generator``, :data:`FALLBACK_KEYS`) when it has them.
    Censored records (see the module doc) are counted and dropped unless ``keep_censored``.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    data = LengthData()
    rep = Reporter(data, strict)
    suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".json":
        return load_sharegpt_json(p, strict=strict)
    rows: Iterator[tuple[str, dict[str, Any]]]
    rows = _iter_csv(p, rep) if ext in (".csv", ".tsv") else _iter_jsonl(p, rep)
    for where, rec in rows:
        parsed = _parse_record(
            rec,
            where,
            rep,
            prompt_key=_key_in(rec, prompt_key),
            length_key=length_key,
            model_key=_key_in(rec, model_key),
        )
        if parsed is None:
            continue
        prompt, length, model = parsed
        if not keep_censored and is_censored(rec, length):
            data.censored += 1
            continue
        pid = rec.get("prompt_id")
        data.append(prompt, length, model, str(pid) if pid not in (None, "") else prompt, p.name)
    return data


def load_data(spec: str, *, strict: bool = False, keep_censored: bool = False) -> LengthData:
    """A dataset by name (:data:`PROMPT_DATASETS`, ``lmsys[:SOURCE]``) or a file path."""
    if spec in PROMPT_DATASETS or spec in PROMPT_DATASET_ALIASES:
        return load_prompt_dataset(spec, strict=strict)
    if spec.startswith("lmsys"):
        _, _, source = spec.partition(":")
        return load_lmsys(source or None, strict=strict)
    return load_records_file(spec, strict=strict, keep_censored=keep_censored)


def is_censored(rec: dict[str, Any], length: int) -> bool:
    """True when ``rec``'s length is only a lower bound: marked truncated, or it reached max_tokens.

    ``truncated`` is what the gateway's traffic log writes when the engine stopped
    at its limit (finish_reason "length"); other logs only carry ``max_tokens``.
    """
    flag = rec.get("truncated")
    if isinstance(flag, str):
        flag = flag.strip().lower() in ("true", "1", "yes")
    if isinstance(flag, (int, float)) and flag:  # True, or a non-zero number
        return True
    limit = _as_length(rec.get("max_tokens"))
    return isinstance(limit, int) and length >= limit


# --------------------------------------------------------------------- parsing
def _key_in(rec: Any, key: str) -> str:
    """``key``, or its shared-collection name when ``rec`` has only that one."""
    other = FALLBACK_KEYS.get(key)
    if other and isinstance(rec, dict) and key not in rec and other in rec:
        return other
    return key


def _parse_record(
    rec: Any,
    where: str,
    rep: Reporter,
    *,
    prompt_key: str,
    model_key: str,
    length_key: str = "output_tokens",
    need_model: bool = False,
) -> tuple[str, int, str | None] | None:
    if not isinstance(rec, dict):
        rep.bad(where, "<record>", f"expected an object, got {type(rec).__name__}")
        return None
    prompt = rec.get(prompt_key)
    if prompt is None:
        rep.bad(where, prompt_key, "missing")
        return None
    if not isinstance(prompt, str):
        rep.bad(where, prompt_key, f"expected text, got {type(prompt).__name__}")
        return None
    if not prompt.strip():
        rep.bad(where, prompt_key, "empty text")
        return None
    length = _as_length(rec.get(length_key))
    if isinstance(length, str):
        rep.bad(where, length_key, length)
        return None
    model = rec.get(model_key)
    if model is not None and not isinstance(model, str):
        model = str(model)
    if model == "":
        model = None
    if need_model and model is None:
        rep.bad(where, model_key, "missing")
        return None
    return prompt, length, model


def _as_length(value: Any) -> int | str:
    """The length as an int, or the reason it is unusable."""
    if value is None or value == "":
        return "missing"
    if isinstance(value, bool):
        return f"expected a token count, got {value!r}"
    try:
        num = float(value)
    except (TypeError, ValueError):
        return f"expected a token count, got {value!r}"
    if num != num or num < 1 or num > MAX_OUTPUT_TOKENS:
        return f"absurd length {value!r} (want 1..{MAX_OUTPUT_TOKENS:,})"
    if num != int(num):
        return f"expected a whole token count, got {value!r}"
    return int(num)


def _iter_jsonl(path: Path, rep: Reporter) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` per non-blank line; unparsable lines are reported and skipped."""
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                where = f"{path}:{lineno}"
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    rep.bad(where, "<line>", f"invalid JSON: {exc.msg}")
                    continue
                yield where, rec
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _iter_csv(path: Path, rep: Reporter) -> Iterator[tuple[str, dict[str, Any]]]:
    delim = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    try:
        with open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter=delim)
            for rec in reader:
                # Line of the record's end; header is line 1.
                yield f"{path}:{reader.line_num}", dict(rec)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
