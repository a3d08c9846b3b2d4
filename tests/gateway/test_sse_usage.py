"""Usage read from an engine's stream: counts only, whatever a faulty engine sends."""

from __future__ import annotations

import json

from ssjf.gateway.sse import take_usage


def _event(usage: object) -> bytes:
    return b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"


def test_counts_are_read_and_non_counts_are_no_usage() -> None:
    assert take_usage(_event({"completion_tokens": 7, "prompt_tokens": 3}), False)[1:] == (7, 3)
    for bad in (-1, True, 2.5, "7", None):
        block = _event({"completion_tokens": bad, "prompt_tokens": bad})
        assert take_usage(block, False)[1:] == (None, None)
