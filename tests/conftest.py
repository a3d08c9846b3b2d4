"""Shared test helpers: tiny factories, no data, no GPU."""

from __future__ import annotations

from ssjf.estimate import LengthEstimate
from ssjf.request import Request


def make_request(
    rid: int | str = 0,
    arrival: float = 0.0,
    predicted: float | None = None,
    prompt_tokens: int = 10,
    max_tokens: int | None = None,
) -> Request:
    """A request with an optional point estimate."""
    est = LengthEstimate(predicted) if predicted is not None else None
    return Request(
        id=rid, arrival=arrival, prompt_tokens=prompt_tokens, max_tokens=max_tokens, estimate=est
    )
