"""A policy is an ordering: ``key(request, now)``, lower is served first."""

from __future__ import annotations

import math
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
    ``time_dependent`` and ``static_unit`` are class defaults that an instance
    may override from its settings (``ssjf:size=service`` keys in seconds; MLFQ
    without promotion is static); the class value must be the most dynamic one
    its settings allow, since configuration checks read the class.

    ``static_unit`` says what a static key measures, so that engines which take
    one number per request (vLLM, SGLang priorities) can be given the same order
    (``ssjf.gateway.ordering``): ``"arrival"`` (the key orders like arrival
    time: engines keep arrival order on equal priorities), ``"tokens"`` (a
    token count, e.g. a predicted length), ``"seconds"`` (predicted service
    time, ``ssjf.service.ServiceTime``), or ``None`` (no static form, or a key
    with no unit: only a queue that evaluates the key itself can apply it).

    What a policy reads, declared so callers need not know policies by name:
    ``reads_estimates`` (the key uses the request's predicted length, so a run
    without estimates degrades it to arrival order) and ``takes_seconds_per_token``
    (the constructor takes ``seconds_per_token``, the time of one decode step of
    one sequence, which callers derive from their cost model or engine).
    """

    name: ClassVar[str] = ""
    oracle: ClassVar[bool] = False
    time_dependent: bool = False
    static_unit: Literal["arrival", "tokens", "seconds"] | None = None
    reads_estimates: ClassVar[bool] = False
    takes_seconds_per_token: ClassVar[bool] = False
    takes_service: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: Tail budget (``ssjf.queue.WaitingQueue``): None = off; ``tau >= 1`` lets a
    #: request be overtaken by at most ``(tau - 1) x`` its FCFS work. Every policy
    #: takes it from a spec (``ssjf:tail=1.1``; :func:`make_policy` sets it); the queue
    #: enforces it.
    tail: float | None = None

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

    def size_tokens(self, req: Request) -> float:
        """Output tokens still to generate as this policy sees them (oracles: the truth).

        The tail budget prices requests by it, so an oracle's budget is exact.
        """
        if self._truth is not None:
            return max(self._truth(req) - req.generated, 0.0)
        return req.predicted_remaining

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_tail(name: str, tail: Any) -> float | None:
    """``tail`` checked: None (off) or a finite number >= 1, else a ValueError naming it."""
    if tail is None:
        return None
    if isinstance(tail, bool) or not isinstance(tail, int | float) or not math.isfinite(tail):
        raise ValueError(
            f"policy {name!r}: setting 'tail' must be a finite number >= 1, got {tail!r}"
        )
    if tail < 1:
        raise ValueError(
            f"policy {name!r}: setting 'tail' must be >= 1 (1 = FCFS order), got {tail!r}"
        )
    return float(tail)


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

    A parameter the policy does not take is a ``ValueError`` naming it. ``tail``
    (the queue's tail budget) is set here for every policy, so a policy's own
    constructor need not forward it.
    """
    cls = _REGISTRY.get(name)
    tail = check_tail(name, params.pop("tail", None))
    try:
        pol = cls(truth=truth, **params) if params else cls(truth=truth)
    except TypeError as exc:
        raise ValueError(f"policy {name!r}: {exc}") from None
    pol.tail = tail
    return pol


def setting_value(text: str) -> Any:
    """A setting's text as int, float, true/false, else the text itself."""
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
        params[key.strip().replace("-", "_")] = setting_value(value.strip())
    return name, params
