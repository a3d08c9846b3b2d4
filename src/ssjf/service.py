"""Predicted service time: a request's work in seconds, prefill plus decode.

Length policies order by output tokens by default; on prefill-heavy traffic
(prompts of tens of thousands of tokens) the prompt is most of the work, so a
policy may order by this estimate instead. The two rates come from the
engine's cost model in the simulator (:meth:`ServiceTime.from_cost`) and from
configuration in the gateway, so both price a request the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ssjf.request import Request


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """Seconds of one request served alone: ``prefill_s_per_token * prompt + decode_s_per_token * output``.

    ``decode_s_per_token`` is one decode step of one sequence;
    ``prefill_s_per_token`` the marginal cost of one prompt token in a prefill.
    """

    decode_s_per_token: float = 0.02
    prefill_s_per_token: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.decode_s_per_token) and self.decode_s_per_token > 0):
            raise ValueError("ServiceTime.decode_s_per_token must be a finite number > 0")
        if not (math.isfinite(self.prefill_s_per_token) and self.prefill_s_per_token >= 0):
            raise ValueError("ServiceTime.prefill_s_per_token must be a finite number >= 0")

    @classmethod
    def from_cost(cls, cost: Any) -> ServiceTime:
        """Rates of a cost model: one decode step of one sequence, and the marginal prefill token.

        Measured on the model itself (``step_time``) so any registered cost model
        works; one that cannot price these steps falls back to the paper's 0.02 s
        per token and free prefill.
        """
        try:
            decode = float(cost.step_time(0, 1, 0, 0))
            big = 4096
            prefill = (
                float(cost.step_time(big, 1, 0, 1)) - float(cost.step_time(0, 1, 0, 1))
            ) / big
        except Exception:  # a cost model that cannot price these steps
            return cls()
        if not (math.isfinite(decode) and decode > 0):
            decode = 0.02
        if not (math.isfinite(prefill) and prefill >= 0):
            prefill = 0.0
        return cls(decode_s_per_token=decode, prefill_s_per_token=prefill)

    def prefill(self, tokens: float) -> float:
        """Seconds to prefill ``tokens`` tokens (a prompt, or a recompute after preemption)."""
        return self.prefill_s_per_token * tokens

    def total(self, req: Request) -> float:
        """Predicted service of the whole request: its prompt, then its predicted output."""
        return self.prefill(req.prompt_tokens) + self.decode_s_per_token * req.predicted_tokens

    def remaining(self, req: Request) -> float:
        """Predicted service still to do: the prompt if not yet started, plus the remaining output.

        A request that has generated tokens and was preempted must recompute its
        prompt and those tokens (counted here); one that never started prefills its prompt.
        """
        redo = req.prompt_tokens + req.generated
        return self.prefill(redo) + self.decode_s_per_token * req.predicted_remaining
