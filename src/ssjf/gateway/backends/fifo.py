"""Engines without priorities (llama.cpp, Ollama, TGI, vLLM fcfs): the gateway queue decides."""

from __future__ import annotations

from ssjf.gateway.backends.base import BackendAdapter, register_backend


@register_backend("fifo")
class FifoBackend(BackendAdapter):
    """Forwards bodies unchanged; ordering comes from releasing at most max_in_flight."""
