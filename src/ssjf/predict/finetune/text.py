"""What the encoder reads: conditioning prefix + prompt, truncated to ``max_length`` tokens.

Truncation happens on word pieces, after the prefix is reserved, so a model-name
prefix is never cut off: ``head`` keeps the beginning, ``tail`` the end (the
latest chat turn), ``head+tail`` half of each. Very long texts are first cut on
characters (a generous multiple of ``max_length``) so a 100,000-character paste
costs no more to tokenize than a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STRATEGIES = ("head", "tail", "head+tail")
#: Prefix for the unconditioned estimate in "prefix" conditioning (also used for
#: model names never seen in training).
GENERIC_MODEL = "any"
#: Characters kept per token of budget before tokenizing (English averages ~4-5).
_CHARS_PER_TOKEN = 12


def model_prefix(model: str | None) -> str:
    """The text prefix that names the target LLM (the paper's "all models" input)."""
    return f"[{GENERIC_MODEL if model is None else model}] "


def as_text(prompt: Any) -> str:
    """A prompt as plain text; chat messages (a list of role/content dicts) are flattened."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and all(isinstance(m, dict) for m in prompt):
        from ssjf.predict.truncate import flatten_chat

        return flatten_chat(prompt)
    raise TypeError(f"a prompt must be a string or a list of chat messages, got {type(prompt)}")


def truncate_ids(ids: list[int], budget: int, strategy: str) -> list[int]:
    """Cut a token id list to ``budget`` ids with ``strategy``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; use one of {STRATEGIES}")
    if budget <= 0:
        return []
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[-budget:]
    head = (budget + 1) // 2
    return ids[:head] + ids[len(ids) - (budget - head) :]


def _precut(text: str, max_chars: int, strategy: str) -> str:
    if len(text) <= max_chars:
        return text
    if strategy == "head":
        return text[:max_chars]
    if strategy == "tail":
        return text[-max_chars:]
    half = max_chars // 2
    return text[:half] + " " + text[-half:]


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    prefixes: Sequence[str],
    max_length: int,
    strategy: str = "head+tail",
) -> list[list[int]]:
    """Token ids with special tokens: ``[CLS] prefix truncated(text) [SEP]`` per text."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; use one of {STRATEGIES}")
    cut = [_precut(t, max_length * _CHARS_PER_TOKEN, strategy) for t in texts]
    body = tokenizer(list(cut), add_special_tokens=False, verbose=False)["input_ids"]
    uniq = sorted(set(prefixes))
    pre_ids = dict(zip(uniq, tokenizer(uniq, add_special_tokens=False)["input_ids"], strict=True))
    start = _first(tokenizer, "cls_token_id", "bos_token_id")
    end = _first(tokenizer, "sep_token_id", "eos_token_id")
    n_special = (start is not None) + (end is not None)
    out = []
    for ids, pre in zip(body, prefixes, strict=True):
        p = pre_ids[pre][: max(max_length - n_special - 1, 0)]
        kept = truncate_ids(list(ids), max_length - n_special - len(p), strategy)
        seq = ([start] if start is not None else []) + p + kept
        out.append([*seq, end] if end is not None else seq)
    return out


def _first(tokenizer: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return None
