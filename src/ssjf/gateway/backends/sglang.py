"""SGLang: ``priority`` with SGLang's convention (engine: --enable-priority-scheduling)."""

from __future__ import annotations

from typing import Any, ClassVar

from ssjf.gateway.backends.base import BackendAdapter, register_backend


@register_backend("sglang")
class SGLangBackend(BackendAdapter):
    """By default SGLang serves *larger* priority values first, so the key is negated.

    With ``--schedule-low-priority-values-first`` on the engine, set
    ``sglang_low_priority_values_first`` and the key is sent as is (vLLM's way).
    """

    orders_by_priority: ClassVar[bool] = True

    def prepare(
        self, body: dict[str, Any], engine_key: int | None, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        headers = super().prepare(body, engine_key, stream, add_usage)
        if engine_key is not None:
            low_first = self.config.sglang_low_priority_values_first
            body["priority"] = engine_key if low_first else -engine_key
        return headers
