"""What the gateway reads from OpenAI request bodies (and nothing more).

Bodies stay plain dicts: the gateway forwards every field it does not own
unchanged, so it validates only what it needs to schedule — the prompt, the
output limits, ``n``/``best_of``, ``stream``, ``model`` and a client's own
``priority`` — and leaves the rest to the engine, which returns its own 400 for
anything else it dislikes. Whatever a client sends, the answer is a 400, never a
500 and never a request that breaks the scheduler: numbers that reach float
arithmetic are bounded, nesting is bounded, and every string can be re-encoded
as UTF-8 when the body is forwarded.
"""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ssjf.gateway.errors import GatewayError, bad_request

if TYPE_CHECKING:
    from ssjf.gateway.config import GatewayConfig

#: Characters per token for the cheap prompt-size estimate (English BPE averages ~4).
CHARS_PER_TOKEN = 4.0
#: Bound of a client's own ``priority`` (vLLM and SGLang take a 32-bit-ish int).
MAX_CLIENT_PRIORITY = 1 << 31
#: Characters of a client's string value quoted back in an error message.
_QUOTE_CHARS = 40


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bounds on request bodies; the defaults are the gateway config's (see config.py)."""

    max_tokens_limit: int = 1 << 20
    max_n: int = 16
    max_json_depth: int = 32
    max_model_chars: int = 256

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> BodyLimits:
        """The limits set in a gateway config."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


_DEFAULT_LIMITS = BodyLimits()


@dataclass(slots=True)
class ParsedRequest:
    """The scheduling-relevant view of one client request."""

    body: dict[str, Any]
    prompt: str
    prompt_tokens: int
    model: str | None
    #: The output limit the engine will really apply per sequence (None: the engine's
    #: default, unknown here). See ``_effective_limit``.
    max_tokens: int | None
    stream: bool
    #: The client itself asked for the final usage chunk of a stream.
    client_wants_usage: bool
    #: Sequences the engine generates for this request: max(n, best_of), times the
    #: number of prompts of a batched /v1/completions request; default 1.
    n: int = 1
    #: The client's own ``priority`` field, removed from the forwarded body: honoured
    #: only for trusted tenants, decided by the gateway, never by the client.
    client_priority: int | None = None
    #: OpenAI's ``service_tier`` as sent (left in the body).
    service_tier: str | None = None
    #: Tokens the engine must generate per sequence whatever the prompt says:
    #: ``min_tokens``, or the whole limit with ``ignore_eos`` (vLLM's sampling
    #: fields). The estimate never goes below it, so neither field jumps the queue.
    min_output: int = 0

    @property
    def work_limit(self) -> int | None:
        """Most output tokens the engine can generate for this request (all sequences)."""
        return None if self.max_tokens is None else self.max_tokens * self.n


class _BadJSON(ValueError):
    """A JSON value the gateway refuses to parse (NaN, Infinity, a float overflow)."""


def _reject_constant(name: str) -> Any:
    raise _BadJSON(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 parses as inf and would be forwarded as `Infinity`, which is not JSON.
        raise _BadJSON("a number is too large for a float")
    return value


def parse_body(raw: bytes, max_depth: int = _DEFAULT_LIMITS.max_json_depth) -> dict[str, Any]:
    """The JSON object in ``raw``, or a 400 naming the problem."""
    if not raw:
        raise bad_request("request body is empty; expected a JSON object")
    try:
        # Strict UTF-8 first: json.loads(bytes) decodes with "surrogatepass", which turns
        # encoded surrogates (ED A0 80) into lone surrogates that cannot be re-encoded
        # when the body is forwarded. RFC 8259 requires UTF-8; a leading BOM is tolerated.
        text = raw.decode("utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8")
    except UnicodeDecodeError as e:
        raise bad_request(
            f"request body is not valid UTF-8: {e.reason} at byte {e.start}"
        ) from None
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except (json.JSONDecodeError, _BadJSON) as e:
        raise bad_request(f"request body is not valid JSON: {e}") from None
    except ValueError:
        # The only other ValueError is Python's limit on integer digits (4300).
        raise bad_request("request body is not valid JSON: a number has too many digits") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    _check_tree(body, text, max_depth)
    return body


def _too_deep(max_depth: int) -> GatewayError:
    return bad_request(f"request body is nested deeper than {max_depth} levels")


#: Types json.loads produces that hold nothing to check (json makes no subclasses).
_SCALARS = frozenset({int, float, bool, type(None)})
_SCALARS_AND_STR = _SCALARS | {str}


def _check_tree(body: dict[str, Any], text: str, max_depth: int) -> None:
    """400 if ``body`` nests deeper than ``max_depth`` or holds a lone surrogate.

    Iterative (a recursive walk is what the depth bound protects against) and
    skipped when the text alone proves it unneeded: fewer brackets than the bound
    cannot nest past it, and without a ``\\uD...`` escape no lone surrogate can
    exist (strict UTF-8 decoding rejects encoded ones). The cost is linear in the
    containers: a list or object of scalars only (token ids) is passed after one
    C-level look at its element types, strings are looked at, never copied, and
    ASCII ones (most) are passed by ``str.isascii``.
    """
    check_depth = text.count("{") + text.count("[") > max_depth
    check_strings = "\\ud" in text or "\\uD" in text
    if not (check_depth or check_strings):
        return
    passable = _SCALARS if check_strings else _SCALARS_AND_STR
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _too_deep(max_depth)
        if isinstance(node, dict):
            if check_strings:
                for key in node:
                    if not key.isascii():
                        _check_unicode(key)
            values: Any = node.values()
        else:
            values = node
        if set(map(type, values)) <= passable:
            continue
        for v in values:
            if isinstance(v, str):
                if check_strings and not v.isascii():
                    _check_unicode(v)
            elif isinstance(v, dict | list):
                stack.append((v, depth + 1))


def _check_unicode(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            "request body is not valid Unicode (lone surrogate: a \\uD800-\\uDFFF escape "
            "that is not half of a pair)"
        ) from None


def _brief(value: Any) -> str:
    """A short description of a client's value for an error message (never all of it)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) < 10**15:
            return str(value)
        digits = int(value.bit_length() * math.log10(2)) + 1  # str() may refuse a huge int
        return f"an integer of about {digits} digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # repr escapes lone surrogates, so the message itself is always encodable.
        cut = value[:_QUOTE_CHARS]
        return repr(cut) + ("..." if len(value) > _QUOTE_CHARS else "")
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


def _int_field(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    """``body[name]`` as an int in [lo, hi], None if absent or null, else a 400."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer, got {_brief(value)}", param=name)
    if not lo <= value <= hi:
        raise bad_request(
            f"'{name}' must be between {lo} and {hi}, got {_brief(value)}", param=name
        )
    return value


def _str_field(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string, got {_brief(value)}", param=name)
    if len(value) > max_chars:
        raise bad_request(
            f"'{name}' is {len(value)} characters long; the limit is {max_chars}", param=name
        )
    return value


def _text_of_content(content: Any) -> str:
    """Text of a chat message's content: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def completion_prompt(body: dict[str, Any]) -> tuple[str, int]:
    """(prompt text, approximate prompt tokens) of a /v1/completions body."""
    text, tokens, _ = _completion_prompts(body)
    return text, tokens


def _completion_prompts(body: dict[str, Any]) -> tuple[str, int, int]:
    """(prompt text, approximate prompt tokens, number of prompts) of a completions body.

    A list of strings or a list of token-id lists is a batch: the engine answers
    each prompt with its own completion(s).
    """
    prompt = body.get("prompt")
    if prompt is None:
        raise bad_request("'prompt' is required", param="prompt")
    if isinstance(prompt, str):
        return prompt, _approx_tokens(prompt), 1
    if isinstance(prompt, list):
        # One C-level pass over the element types (a prompt may be a million token ids);
        # json.loads makes exact types, so bools are never taken for ints here.
        kinds = set(map(type, prompt))
        if kinds <= {str}:
            text = "\n".join(prompt)
            return text, _approx_tokens(text), max(1, len(prompt))
        if kinds == {int}:
            return "", len(prompt), 1  # token ids: no text to predict from
        if kinds == {list}:
            return "", sum(len(p) for p in prompt), len(prompt)
    raise bad_request(
        "'prompt' must be a string, a list of strings or a list of token ids", param="prompt"
    )


def chat_prompt(body: dict[str, Any]) -> tuple[str, int]:
    """(flattened message contents, approximate tokens) of a /v1/chat/completions body.

    Contents are joined with newlines, without role names, so a single-turn chat
    reads exactly like the raw prompt a predictor was trained on.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list", param="messages")
    texts = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request(f"messages[{i}] must be an object", param="messages")
        text = _text_of_content(m.get("content"))
        if text:
            texts.append(text)
    joined = "\n".join(texts)
    return joined, _approx_tokens(joined)


def _approx_tokens(text: str) -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN)) if text else 0


def _effective_limit(body: dict[str, Any], chat: bool, cap: int) -> int | None:
    """The per-sequence output limit the engine will apply; None: its default (unknown).

    Engines disagree on which field wins when several are given (vLLM's chat takes
    max_completion_tokens over max_tokens; llama.cpp reads its own n_predict before
    either). Scheduling by the smaller would let a client send ``max_tokens: 1`` with
    ``max_completion_tokens: 1500`` and jump the queue as a 1-token job, so the
    larger is used: it bounds the output whichever field the engine honours.
    """
    max_tokens = _int_field(body, "max_tokens", 1, cap)
    mct = _int_field(body, "max_completion_tokens", 1, cap)
    # llama.cpp: n_predict <= 0 means "until the context is full" (-1, -2).
    n_predict = _int_field(body, "n_predict", -2, cap)
    if not chat and max_tokens is None:
        # Completions engines read max_tokens (vLLM, SGLang) or n_predict (llama.cpp),
        # never max_completion_tokens: without max_tokens some engine's default applies.
        return None
    if n_predict is not None and n_predict < 1:
        return None
    given = [v for v in (max_tokens, mct, n_predict) if v is not None]
    return max(given) if given else None


def parse_request(raw: bytes, chat: bool, limits: BodyLimits | None = None) -> ParsedRequest:
    """Parse and check a completions (``chat=False``) or chat-completions body."""
    lim = limits or _DEFAULT_LIMITS
    body = parse_body(raw, lim.max_json_depth)
    if chat:
        prompt, n_tokens = chat_prompt(body)
        prompts = 1
    else:
        prompt, n_tokens, prompts = _completion_prompts(body)
        if prompts > lim.max_n:
            raise bad_request(
                f"a batch of {prompts} prompts is more than the gateway's limit of {lim.max_n}",
                param="prompt",
            )
    max_tokens = _effective_limit(body, chat, lim.max_tokens_limit)
    n = _int_field(body, "n", 1, lim.max_n)
    best_of = _int_field(body, "best_of", 1, lim.max_n)
    if n is not None and best_of is not None and best_of < n:
        # OpenAI's rule: best_of candidates are generated, n of them returned.
        raise bad_request(f"'best_of' ({best_of}) must be >= 'n' ({n})", param="best_of")
    min_tokens = _int_field(body, "min_tokens", 0, lim.max_tokens_limit) or 0
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise bad_request("'ignore_eos' must be a boolean", param="ignore_eos")
    # ignore_eos runs to the limit: the stated one, else the engine's default, at least the
    # largest the gateway accepts (a forced long job must not be scheduled, or learnt, short).
    min_output = (max_tokens or lim.max_tokens_limit) if ignore_eos else min_tokens
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request(f"'stream' must be a boolean, got {_brief(stream)}", param="stream")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")
    wants_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
    model = _str_field(body, "model", lim.max_model_chars)
    service_tier = _str_field(body, "service_tier", lim.max_model_chars)
    client_priority = _int_field(body, "priority", -MAX_CLIENT_PRIORITY, MAX_CLIENT_PRIORITY)
    # The engine's priority is the gateway's to set: a client's own must never reach it.
    body.pop("priority", None)
    return ParsedRequest(
        body=body,
        prompt=prompt,
        prompt_tokens=n_tokens,
        model=model,
        max_tokens=max_tokens,
        stream=stream,
        client_wants_usage=wants_usage,
        n=max(n or 1, best_of or 1) * prompts,
        client_priority=client_priority,
        service_tier=service_tier,
        min_output=min_output if max_tokens is None else min(min_output, max_tokens),
    )


__all__ = [
    "BodyLimits",
    "GatewayError",
    "ParsedRequest",
    "chat_prompt",
    "completion_prompt",
    "parse_body",
    "parse_request",
]
