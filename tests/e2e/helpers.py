"""Small helpers for the engine tests: blocking HTTP calls, SSE parsing, a test predictor."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ssjf.estimate import LengthEstimate

MODEL = "tiny"


def completion(url: str, prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """A plain /v1/completions call with ``ignore_eos``; the JSON answer."""
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
    body.update(extra)
    r = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def sse_events(lines: Sequence[str]) -> list[Any]:
    """The JSON payloads of ``data:`` lines ('[DONE]' kept as the string)."""
    out: list[Any] = []
    for line in lines:
        if line.startswith("data:"):
            payload = line[5:].strip()
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def stream_lines(url: str, path: str, body: dict[str, Any]) -> list[str]:
    """POST a streaming request; all its lines (status checked)."""
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=600) as r:
        assert r.status_code == 200, r.read().decode()
        return list(r.iter_lines())


class PromptTagPredictor:
    """Test predictor: reads the estimate from a ``len=N`` tag in the prompt.

    Stands in for a trained model so tests control the ordering exactly; the
    gateway sees it as any other predictor.
    """

    def predict(
        self, prompts: Sequence[str], models: Sequence[str | None] | None = None
    ) -> list[LengthEstimate]:
        out = []
        for p in prompts:
            m = re.search(r"len=(\d+)", p)
            out.append(LengthEstimate(point=float(m.group(1)) if m else 100.0))
        return out


def engine_gauge(url: str, name: str) -> float:
    """A gauge from the engine's Prometheus /metrics (summed over label sets)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_until(
    cond: Any, timeout: float = 30.0, what: str = "condition", state: Any = None
) -> None:
    """Poll ``cond()`` until true or fail after ``timeout`` seconds (``state()`` says why)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            detail = f" ({state()})" if state is not None else ""
            raise AssertionError(f"timed out waiting for {what}{detail}")
        time.sleep(0.05)
