"""Server-sent events as the gateway relays them: cut at event boundaries, read usage.

Streams pass through byte for byte; the gateway only needs to know where events
end (never forward half an event it may have to drop) and what the engine's
final usage chunk says (the true output length).
"""

from __future__ import annotations

import json
import re
from typing import Any

_EVENT = re.compile(rb".*?(?:\r\n\r\n|\n\n)", re.DOTALL)
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_LENGTH_FINISH = re.compile(rb'"finish_reason"\s*:\s*"length"')
#: Bytes held while waiting for the end of an SSE event before passing them on raw
#: (an upstream that never ends its events must not make the gateway buffer forever).
MAX_PENDING_BYTES = 1 << 16


def event_cut(buf: bytes) -> int:
    """Length of the prefix of ``buf`` made of complete SSE events (0 if none)."""
    i = buf.rfind(b"\n\n")
    j = buf.rfind(b"\r\n\r\n")
    return max(i + 2 if i >= 0 else 0, j + 4 if j >= 0 else 0)


def _data_payload(event: bytes) -> bytes:
    return b"\n".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def body_usage(data: bytes) -> tuple[int | None, int | None]:
    """(completion_tokens, prompt_tokens) of a whole JSON response body, if present."""
    m = _COMPLETION_TOKENS.search(data)
    p = _PROMPT_TOKENS.search(data)
    return (int(m.group(1)) if m else None, int(p.group(1)) if p else None)


def length_finish(data: bytes) -> bool:
    """Whether ``data`` (a body, or whole SSE events) says generation hit its limit."""
    return b'"length"' in data and _LENGTH_FINISH.search(data) is not None


def take_usage(block: bytes, strip: bool) -> tuple[bytes, int | None, int | None]:
    """(block, completion_tokens, prompt_tokens) from the usage chunk in ``block``.

    With ``strip`` the usage-only chunk (asked for on the client's behalf) is
    removed from the block; other events are kept byte for byte.
    """
    kept: list[bytes] = []
    changed = False
    pos = 0
    completion = prompt = None
    for m in _EVENT.finditer(block):
        event = m.group(0)
        pos = m.end()
        if b'"usage"' in event:
            try:
                obj: Any = json.loads(_data_payload(event))
            except ValueError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
                usage = obj["usage"]
                # Counts only (as body_usage's pattern reads them): a faulty engine's
                # negative or boolean value is no usage.
                if _count(usage.get("completion_tokens")):
                    completion = usage["completion_tokens"]
                if _count(usage.get("prompt_tokens")):
                    prompt = usage["prompt_tokens"]
                if strip and not obj.get("choices"):
                    changed = True
                    continue
        kept.append(event)
    if not changed:
        return block, completion, prompt
    kept.append(block[pos:])
    return b"".join(kept), completion, prompt
