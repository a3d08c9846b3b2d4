"""vLLM: body field ``priority``, lower is served first (engine: --scheduling-policy priority)."""

from __future__ import annotations

from typing import Any

from ssjf.gateway.backends.base import BackendAdapter


class VLLMBackend(BackendAdapter):
    """Sends ``priority`` = bucketed predicted tokens when the engine honours priorities.

    vLLM orders only its waiting queue by (priority, arrival); with
    ``--scheduling-policy fcfs`` the field is silently ignored, which is why the
    config states the engine's policy and, for fcfs, sends nothing.
    """

    name = "vllm"

    def prepare(
        self, body: dict[str, Any], predicted_tokens: float, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        headers = super().prepare(body, predicted_tokens, stream, add_usage)
        if self.config.vllm_scheduling_policy == "priority":
            prio = self.rank(predicted_tokens)
            body["priority"] = prio
            if self.config.vllm_priority_header:
                headers["X-Vllm-Priority"] = str(prio)
        return headers
