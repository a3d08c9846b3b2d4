"""What every engine adapter does: adjust the forwarded body and headers."""

from __future__ import annotations

from typing import Any

from ssjf.gateway.config import GatewayConfig


class BackendAdapter:
    """Base adapter: forwards the body unchanged apart from the usage request.

    Subclasses add the engine's priority convention. ``max_tokens`` and every
    field the gateway does not own are never touched.
    """

    name = "base"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.bucket = config.priority_bucket_tokens
        self.pmax = config.priority_max

    def rank(self, predicted_tokens: float) -> int:
        """Lower-is-sooner rank of a predicted length: bucketed, clamped to [0, priority_max]."""
        return min(int(max(predicted_tokens, 0.0) // self.bucket), self.pmax)

    def prepare(
        self, body: dict[str, Any], predicted_tokens: float, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        """Edit ``body`` in place for the engine; return extra request headers."""
        if stream and add_usage:
            opts = body.get("stream_options")
            opts = dict(opts) if isinstance(opts, dict) else {}
            opts["include_usage"] = True
            body["stream_options"] = opts
        return {}


def make_backend(config: GatewayConfig) -> BackendAdapter:
    """The adapter named by ``config.backend``."""
    from ssjf.gateway.backends.fifo import FifoBackend
    from ssjf.gateway.backends.sglang import SGLangBackend
    from ssjf.gateway.backends.vllm import VLLMBackend

    cls = {"vllm": VLLMBackend, "sglang": SGLangBackend, "fifo": FifoBackend}[config.backend]
    return cls(config)
