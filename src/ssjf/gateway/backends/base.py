"""What every engine adapter does, and the registry of adapters by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ssjf.registry import Registry

if TYPE_CHECKING:
    from ssjf.gateway.config import GatewayConfig


class BackendAdapter:
    """Base adapter: forwards the body unchanged apart from the usage request.

    Subclasses add the engine's priority convention: ``prepare`` receives the one
    engine key computed by ``ssjf.gateway.ordering.EngineOrdering`` (lower first,
    or None) and writes it the way the engine reads it. ``max_tokens`` and every
    field the gateway does not own are never touched.
    """

    name: ClassVar[str] = "base"
    #: Whether the engine orders its waiting requests by what ``prepare`` sends. An
    #: adapter that does not relies on the gateway-held queue (max_in_flight).
    orders_by_priority: ClassVar[bool] = False

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config

    @property
    def honours_priority(self) -> bool:
        """Whether requests sent through this adapter are ordered by the engine."""
        return self.orders_by_priority

    def prepare(
        self, body: dict[str, Any], engine_key: int | None, stream: bool, add_usage: bool
    ) -> dict[str, str]:
        """Edit ``body`` in place for the engine; return extra request headers."""
        if stream and add_usage:
            opts = body.get("stream_options")
            opts = dict(opts) if isinstance(opts, dict) else {}
            opts["include_usage"] = True
            body["stream_options"] = opts
        return {}


_REGISTRY: Registry[type[BackendAdapter]] = Registry("backend", "name")


def register_backend(name: str) -> Callable[[type[BackendAdapter]], type[BackendAdapter]]:
    """Class decorator adding an engine adapter to the registry under ``name``."""
    return _REGISTRY.register(name)


def available_backends() -> dict[str, type[BackendAdapter]]:
    """Registered adapters by name."""
    return _REGISTRY.as_dict()


def make_backend(config: GatewayConfig) -> BackendAdapter:
    """The adapter named by ``config.backend``."""
    return _REGISTRY.get(config.backend)(config)
