"""Test helpers shared by the gateway tests."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence

import httpx

from ssjf.estimate import LengthEstimate

_LEN = re.compile(r"len=(\d+)")


class FakePredictor:
    """Predicts the number written as ``len=N`` in the prompt (else 100): fully controllable."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        self.calls.append(len(prompts))
        out = []
        for p in prompts:
            m = _LEN.search(p)
            out.append(LengthEstimate(point=float(m.group(1)) if m else 100.0))
        return out


def post_json(url: str, body: dict, timeout: float = 10.0) -> httpx.Response:
    """POST ``body`` and return the response (any status)."""
    return httpx.post(url, json=body, timeout=timeout)


def raw_request(port: int, path: str, body: bytes) -> socket.socket:
    """Send one HTTP/1.1 POST on a plain socket and return it (to drop it mid-request)."""
    s = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s.sendall(head + body)
    return s


def completion(prompt: str, max_tokens: int = 4, **extra: object) -> dict:
    """A /v1/completions body."""
    return {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, **extra}
