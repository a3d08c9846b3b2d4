"""A policy is an ordering: ``key(request, now)``, lower is served first."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from ssjf.registry import Registry
from ssjf.request import Request

#: Looks up a request's true output length. Only oracle policies receive one.
TruthLookup = Callable[[Request], float]


class Policy(ABC):
    """An ordering of waiting requests.

    ``key`` must depend only on what a real scheduler can see (the request's
    public fields and ``now``); oracle policies, flagged ``oracle = True``, are
    the single named exception and are handed a ``truth`` lookup by the caller.
    Policies whose key changes while a request waits set ``time_dependent``
    so the queue re-evaluates keys at each pop instead of caching them.

    ``static_unit`` says what a static key measures, so that engines which take
    one number per request (vLLM, SGLang priorities) can be given the same order
    (``ssjf.gateway.ordering``): ``"arrival"`` (the key orders like arrival
    time: engines keep arrival order on equal priorities), ``"tokens"`` (a
    token count, e.g. a predicted length), or ``None`` (no static form: only a
    queue that re-evaluates the key can apply it).

    What a policy reads, declared so callers need not know policies by name:
    ``reads_estimates`` (the key uses the request's predicted length, so a run
    without estimates degrades it to arrival order) and ``takes_seconds_per_token``
    (the constructor takes ``seconds_per_token``, the time of one decode step of
    one sequence, which callers derive from their cost model or engine).
    """

    name: ClassVar[str] = ""
    oracle: ClassVar[bool] = False
    time_dependent: ClassVar[bool] = False
    static_unit: ClassVar[Literal["arrival", "tokens"] | None] = None
    reads_estimates: ClassVar[bool] = False
    takes_seconds_per_token: ClassVar[bool] = False
    takes_service: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, truth: TruthLookup | None = None) -> None:
        if self.oracle and truth is None:
            raise ValueError(
                f"policy {self.name!r} is an oracle: it needs the true output lengths, "
                "which only the simulator has"
            )
        if not self.oracle and truth is not None:
            raise ValueError(f"policy {self.name!r} is not an oracle and must not see true lengths")
        self._truth = truth

    @abstractmethod
    def key(self, req: Request, now: float) -> float:
        """Sort key: lower is served first; ties are broken by enqueue order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_REGISTRY: Registry[type[Policy]] = Registry("policy", "name")


def register_policy(name: str) -> Callable[[type[Policy]], type[Policy]]:
    """Class decorator adding a policy to the registry under ``name``."""
    return _REGISTRY.register(name)


def available_policies() -> dict[str, type[Policy]]:
    """Registered policies by name."""
    return _REGISTRY.as_dict()


def policy_class(name: str) -> type[Policy]:
    """The policy registered as ``name`` (its declarations without building one)."""
    return _REGISTRY.get(name)


def make_policy(name: str, *, truth: TruthLookup | None = None, **params: Any) -> Policy:
    """Build a registered policy; oracle policies need ``truth``.

    A parameter the policy does not take is a ``ValueError`` naming it.
    """
    cls = _REGISTRY.get(name)
    try:
        return cls(truth=truth, **params) if params else cls(truth=truth)
    except TypeError as exc:
        raise ValueError(f"policy {name!r}: {exc}") from None


def _value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


def parse_policy_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ssjf:size=service:budget=1.1"`` -> ``("ssjf", {"size": "service", "budget": 1.1})``.

    The name must be registered; values are read as int, float, true/false, else text.
    Whether the policy takes those settings is checked when it is built.
    """
    parts = [p.strip() for p in spec.strip().split(":")]
    name, params = parts[0], {}
    _REGISTRY.get(name)  # unknown names fail here, listing the known ones
    for opt in parts[1:]:
        key, eq, value = opt.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ValueError(f"policy spec {spec!r}: settings are key=value, got {opt!r}")
        params[key.strip().replace("-", "_")] = _value(value.strip())
    return name, params
