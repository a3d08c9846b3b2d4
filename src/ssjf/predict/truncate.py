"""Prompt preparation: flatten chat messages and truncate very long prompts.

Encoders have a bounded input (MiniLM: 256 word pieces, BERT: 512), and even a
TF-IDF featuriser should not spend 50 ms on a 100,000-character paste. What the
model reads is cut to ``max_chars`` characters by one of three strategies:

* ``head``: the beginning (the instruction is often first),
* ``tail``: the end (in chats, the latest user turn is last),
* ``head+tail``: half of each, joined by `` ... `` (the default: keeps both the
  task statement and the final question).

The length of the *full* prompt is still available to families that use it as a
feature (it is one of the strongest single signals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

TruncationStrategy = Literal["head", "tail", "head+tail"]
STRATEGIES: tuple[str, ...] = ("head", "tail", "head+tail")
_JOIN = " ... "


def truncate_text(text: str, max_chars: int, strategy: str = "head+tail") -> str:
    """Cut ``text`` to at most ``max_chars`` characters with ``strategy``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; use one of {STRATEGIES}")
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    if strategy == "head":
        return text[:max_chars]
    if strategy == "tail":
        return text[-max_chars:]
    keep = max_chars - len(_JOIN)
    if keep < 2:
        return text[:max_chars]
    head = keep // 2
    return text[:head] + _JOIN + text[len(text) - (keep - head) :]


def flatten_chat(messages: Iterable[Mapping[str, object]]) -> str:
    """Render chat messages (``{"role", "content"}`` or ShareGPT ``{"from", "value"}``) as text.

    Each turn becomes ``<|role|> content`` on its own line so a text model can see
    who said what; roles are normalised (``human`` -> ``user``, ``gpt`` -> ``assistant``).
    """
    parts = []
    for msg in messages:
        role = str(msg.get("role", msg.get("from", "user")) or "user").lower()
        role = _ROLE_ALIASES.get(role, role)
        content = msg.get("content", msg.get("value", ""))
        parts.append(f"<|{role}|> {'' if content is None else content!s}")
    return "\n".join(parts)


_ROLE_ALIASES = {"human": "user", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant"}
