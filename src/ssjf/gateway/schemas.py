"""What the gateway reads from OpenAI request bodies (and nothing more).

Bodies stay plain dicts: the gateway forwards every field it does not own
unchanged, so it validates only what it needs to schedule — the prompt,
``max_tokens``, ``stream`` and ``stream_options`` — and leaves the rest to the
engine, which returns its own 400 for anything else it dislikes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ssjf.gateway.errors import GatewayError, bad_request

#: Characters per token for the cheap prompt-size estimate (English BPE averages ~4).
CHARS_PER_TOKEN = 4.0


@dataclass(slots=True)
class ParsedRequest:
    """The scheduling-relevant view of one client request."""

    body: dict[str, Any]
    prompt: str
    prompt_tokens: int
    model: str | None
    max_tokens: int | None
    stream: bool
    #: The client itself asked for the final usage chunk of a stream.
    client_wants_usage: bool


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, or a 400 naming the problem."""
    if not raw:
        raise bad_request("request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer", param=name)
    if value < 1:
        raise bad_request(f"'{name}' must be >= 1", param=name)
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
    prompt = body.get("prompt")
    if prompt is None:
        raise bad_request("'prompt' is required", param="prompt")
    if isinstance(prompt, str):
        return prompt, _approx_tokens(prompt)
    if isinstance(prompt, list):
        if all(isinstance(p, str) for p in prompt):
            text = "\n".join(prompt)
            return text, _approx_tokens(text)
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return "", len(prompt)  # token ids: no text to predict from
        if all(isinstance(p, list) for p in prompt):
            return "", sum(len(p) for p in prompt)
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


def parse_request(raw: bytes, chat: bool) -> ParsedRequest:
    """Parse and check a completions (``chat=False``) or chat-completions body."""
    body = parse_body(raw)
    prompt, n_tokens = chat_prompt(body) if chat else completion_prompt(body)
    max_tokens = _int_field(body, "max_tokens")
    if chat:
        mct = _int_field(body, "max_completion_tokens")
        if mct is not None:
            max_tokens = mct if max_tokens is None else min(max_tokens, mct)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", param="stream")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")
    wants_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
    model = body.get("model")
    return ParsedRequest(
        body=body,
        prompt=prompt,
        prompt_tokens=n_tokens,
        model=model if isinstance(model, str) else None,
        max_tokens=max_tokens,
        stream=stream,
        client_wants_usage=wants_usage,
    )


__all__ = ["GatewayError", "ParsedRequest", "chat_prompt", "completion_prompt", "parse_request"]
