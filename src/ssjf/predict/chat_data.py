"""Chat-log loaders: ShareGPT-format JSON and LMSYS-Chat-1M (via Hugging Face ``datasets``).

Every assistant reply that follows a user turn becomes one record. Its prompt is
either the latest user message (``context="last"``) or the whole conversation so
far flattened with role tags (``context="full"``, see
:func:`ssjf.predict.truncate.flatten_chat`). These logs store text, not token
counts, so the reply is tokenised:

* with ``tokenizer=NAME_OR_DIR`` by that Hugging Face tokenizer (use the served
  model's own tokenizer for real work), else
* by the **regex approximation** ``approx-regex``: one token per word (``\\w+``) or
  punctuation mark. It undercounts BPE tokens by roughly a quarter on English but
  preserves order well, which is what a scheduler needs. The unit is recorded in
  the training metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ssjf.datadir import DataError
from ssjf.predict.baselines import approx_tokens
from ssjf.predict.records import MAX_OUTPUT_TOKENS, LengthData, Reporter
from ssjf.predict.truncate import flatten_chat
from ssjf.textio import decode

APPROX_TOKENIZER = "approx-regex"
LMSYS_HUB_NAME = "lmsys/lmsys-chat-1m"
_USER = {"user", "human"}
_ASSISTANT = {"assistant", "gpt", "chatgpt", "bard", "bing", "model"}


def token_counter(tokenizer: str | None) -> Callable[[str], int]:
    """A function counting tokens with ``tokenizer`` (HF name or dir), else the regex approximation."""
    if not tokenizer or tokenizer == APPROX_TOKENIZER:
        return approx_tokens
    from ssjf.predict._deps import require

    transformers = require("transformers", f"tokenizer {tokenizer!r}")
    tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    return lambda text: len(tok.encode(text, add_special_tokens=False))


def _role(msg: Mapping[str, Any]) -> str:
    return str(msg.get("role", msg.get("from", ""))).lower()


def _content(msg: Mapping[str, Any]) -> Any:
    return msg.get("content", msg.get("value"))


def conversation_records(
    turns: Any,
    where: str,
    rep: Reporter,
    *,
    conv_id: str,
    model: str | None,
    count: Callable[[str], int],
    context: str,
    out: LengthData,
    dataset: str,
) -> None:
    """Append one record per (user turn, assistant reply) pair of a conversation."""
    if not isinstance(turns, list) or not turns:
        rep.bad(where, "conversation", "missing or not a list of messages")
        return
    for k, msg in enumerate(turns):
        if not isinstance(msg, Mapping):
            rep.bad(f"{where} turn {k}", "message", "not an object")
            return
        if _role(msg) not in _ASSISTANT or k == 0 or _role(turns[k - 1]) not in _USER:
            continue
        user, reply = _content(turns[k - 1]), _content(msg)
        if not isinstance(user, str) or not user.strip():
            rep.bad(f"{where} turn {k - 1}", "content", "empty or missing user text")
            continue
        if not isinstance(reply, str) or not reply.strip():
            rep.bad(f"{where} turn {k}", "content", "empty or missing reply text")
            continue
        n_tokens = count(reply)
        if not 1 <= n_tokens <= MAX_OUTPUT_TOKENS:
            rep.bad(f"{where} turn {k}", "content", f"absurd reply length {n_tokens}")
            continue
        prompt = user if context == "last" else flatten_chat(turns[:k])
        out.append(prompt, n_tokens, model, f"{conv_id}/{k}", dataset)


def load_sharegpt_json(
    path: str | Path,
    *,
    strict: bool = False,
    tokenizer: str | None = None,
    context: str = "last",
    model: str | None = "chatgpt",
) -> LengthData:
    """ShareGPT JSON: a list of ``{"id", "conversations": [{"from", "value"}, ...]}``."""
    p = Path(path)
    try:
        raw = json.loads(decode(p.read_bytes()))
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc}") from None
    if not isinstance(raw, list):
        raise DataError(f"{p}: expected a JSON list of conversations")
    data = LengthData()
    rep = Reporter(data, strict)
    count = token_counter(tokenizer)
    for i, conv in enumerate(raw):
        where = f"{p}: record {i}"
        if not isinstance(conv, dict):
            rep.bad(where, "<record>", "not an object")
            continue
        conversation_records(
            conv.get("conversations", conv.get("items")),
            where,
            rep,
            conv_id=str(conv.get("id", i)),
            model=conv.get("model", model),
            count=count,
            context=context,
            out=data,
            dataset=p.name,
        )
    data.unit = tokenizer or APPROX_TOKENIZER
    return data


def load_lmsys(
    source: str | None = None,
    *,
    strict: bool = False,
    tokenizer: str | None = None,
    context: str = "last",
    limit: int | None = None,
    split: str = "train",
) -> LengthData:
    """LMSYS-Chat-1M rows (``conversation_id``, ``model``, ``conversation`` of {role, content}).

    ``source`` is a local parquet/JSON(L) file in the same schema, or ``None`` for
    the hub dataset ``lmsys/lmsys-chat-1m`` (gated: accept its licence on the hub
    and log in with ``huggingface-cli login`` first).
    """
    from ssjf.predict._deps import require

    datasets = require("datasets", "lmsys chat data")
    if source is None:
        rows: Iterable[Any] = datasets.load_dataset(LMSYS_HUB_NAME, split=split, streaming=True)
        label = LMSYS_HUB_NAME
    else:
        p = Path(source)
        if not p.is_file():
            raise DataError(f"{p}: no such file")
        kind = "parquet" if p.suffix == ".parquet" else "json"
        try:
            rows = datasets.load_dataset(kind, data_files=str(p), split="train")
        except Exception as exc:  # datasets raises many types for unreadable files
            raise DataError(f"{p}: cannot read as {kind}: {exc}") from None
        label = str(p)
    data = LengthData()
    rep = Reporter(data, strict)
    count = token_counter(tokenizer)
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            break
        where = f"{label}: row {i}"
        name = row.get("model")
        if not isinstance(name, str) or not name:
            rep.bad(where, "model", "missing")
            continue
        conversation_records(
            row.get("conversation"),
            where,
            rep,
            conv_id=str(row.get("conversation_id", i)),
            model=name,
            count=count,
            context=context,
            out=data,
            dataset="lmsys",
        )
    data.unit = tokenizer or APPROX_TOKENIZER
    return data
