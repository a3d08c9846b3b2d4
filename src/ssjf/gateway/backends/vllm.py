"""vLLM: body field ``priority``, lower is served first (engine: --scheduling-policy priority)."""

from __future__ import annotations

from typing import Any, ClassVar

from ssjf.gateway.backends.base import BackendAdapter, register_backend


@register_backend("vllm")
class VLLMBackend(BackendAdapter):
    """Sends ``priority`` = the engine key when the engine honours priorities.

    vLLM orders only its waiting queue by (priority, arrival); with
    ``--scheduling-policy fcfs`` the field is silently ignored, which is why the
    config states the engine's policy and, for fcfs, sends nothing.
    """

    orders_by_priority: ClassVar[bool] = True

    @property
    def honours_priority(self) -> bool:
        return self.config.vllm_scheduling_policy == "priority"

    def prepare(
        self, body: dict[str, Any], engine_key: int | None, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        headers = super().prepare(body, engine_key, stream, add_usage)
        if engine_key is not None and self.honours_priority:
            body["priority"] = engine_key
            if self.config.vllm_priority_header:
                headers["X-Vllm-Priority"] = str(engine_key)
        return headers
