"""SGLang: ``priority`` with SGLang's convention (engine: --enable-priority-scheduling)."""

from __future__ import annotations

from typing import Any

from ssjf.gateway.backends.base import BackendAdapter


class SGLangBackend(BackendAdapter):
    """By default SGLang serves *larger* priority values first, so the rank is flipped.

    With ``--schedule-low-priority-values-first`` on the engine, set
    ``sglang_low_priority_values_first`` and the rank is sent as is (vLLM's way).
    """

    name = "sglang"

    def prepare(
        self, body: dict[str, Any], predicted_tokens: float, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        headers = super().prepare(body, predicted_tokens, stream, add_usage)
        rank = self.rank(predicted_tokens)
        body["priority"] = (
            rank if self.config.sglang_low_priority_values_first else self.pmax - rank
        )
        return headers
