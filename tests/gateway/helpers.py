"""Test helpers shared by the gateway tests."""

from __future__ import annotations

import re
from collections.abc import Sequence

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
