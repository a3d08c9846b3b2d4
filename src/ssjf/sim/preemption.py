"""Preemption with a price: when a waiting request may displace a running one.

One rule for every engine that can preempt (serial, continuous, the step
reference), so that they all make the same decisions. A waiting request ``h``
displaces a running ``v`` by recompute (``v`` goes back to the queue keeping
its generated tokens, its KV cache is dropped) only when

* ``v`` is **eligible** (TRAIL-style limited preemption): it was preempted
  fewer than ``max_per_request`` times (memory evictions count too: each one
  already cost a recompute), and it is early in its predicted life,
  ``generated <= early_fraction * predicted_tokens``, when its KV cache is small;
* the policy orders ``h`` before ``v``: ``key(h) < key(v)`` at the same instant,
  with ``v.generated`` up to date;
* the predicted gain pays the price: ``W - R(h) > price * m * C(v)``, with
  ``R`` a predicted remaining service (``h``: its prefill plus its decode; a
  running request: its remaining decode), ``W`` the predicted wait of ``h``
  without preemption, i.e. the soonest predicted completion among the running
  decoders (on the serial engine ``W = R(v)``), ``C(v)`` the recompute of ``v``
  (a prefill of its prompt plus its generated tokens) and ``m`` the sequences
  sharing the engine's steps (1 on the serial engine, the running batch on
  the continuous one).

  Why this form: serving ``h`` now saves it ``W``; ``v`` waits again until
  ``h`` ends or a slot frees, ``min(W, R(h))``, and pays ``C``. The sum of their
  completion times falls by ``W - min(W, R(h)) - C``: on one server the classic
  ``R(v) - R(h) - C``. In a batch the recompute's prefill also slows the steps
  of every running sequence, so each of the ``m`` pays ``C``. Comparing with
  ``R(v)`` instead of ``W`` ignores that a batch frees slots all the time: it
  made even oracle SRPT 35% worse on continuous:32 at load 0.9. ``price = 1``
  is the break-even; more asks for a margin against bad predictions (and the
  queue, which a recompute delays too).

Services are priced with :class:`ssjf.service.ServiceTime` from the run's cost
model, plus the fixed cost of a prefill step (the paper's 0.1 s), which the
token rates leave out but every recompute pays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ssjf.request import Request
from ssjf.service import ServiceTime

#: Spellings of "no preemption" in a spec.
OFF = ("off", "none", "no", "false", "0")
#: Spec keys -> PreemptionRule fields.
_KEYS = {"max": "max_per_request", "early": "early_fraction", "price": "price"}


@dataclass(frozen=True, slots=True)
class PreemptionRule:
    """Settings of limited, priced preemption by recompute (see the module doc)."""

    max_per_request: int = 1  # TRAIL's bound: one recompute per request at most
    early_fraction: float = 0.5  # victims only in the first half of their predicted life
    price: float = 1.0  # break-even of the two-job exchange argument

    def __post_init__(self) -> None:
        if isinstance(self.max_per_request, bool) or not isinstance(self.max_per_request, int):
            raise ValueError(
                f"PreemptionRule.max_per_request must be an integer, got {self.max_per_request!r}"
            )
        if self.max_per_request < 1:
            raise ValueError(
                f"PreemptionRule.max_per_request must be >= 1 (use no rule to turn preemption "
                f"off), got {self.max_per_request}"
            )
        if not (0.0 <= self.early_fraction <= 1.0):
            raise ValueError(
                f"PreemptionRule.early_fraction must be in [0, 1], got {self.early_fraction!r}"
            )
        if not (math.isfinite(self.price) and self.price >= 0):
            raise ValueError(
                f"PreemptionRule.price must be a finite number >= 0, got {self.price!r}"
            )

    @property
    def spec(self) -> str:
        """The CLI spelling, as accepted by :func:`parse_preemption`."""
        return f"max={self.max_per_request}:early={self.early_fraction:g}:price={self.price:g}"

    def eligible(self, req: Request) -> bool:
        """May ``req`` (running, ``generated`` up to date) be preempted by a waiting request?"""
        return (
            req.preemptions < self.max_per_request
            and req.generated <= self.early_fraction * req.predicted_tokens
        )

    def last_eligible(self, req: Request) -> int:
        """The largest ``generated`` at which ``req`` is still eligible (estimates are fixed)."""
        return math.floor(self.early_fraction * req.predicted_tokens)

    def bind(self, cost: Any) -> Preempter:
        """This rule priced under one run's cost model."""
        service = ServiceTime.from_cost(cost)
        try:
            fixed = float(cost.step_time(0, 1, 0, 1)) - float(cost.step_time(0, 1, 0, 0))
        except Exception:  # a cost model that cannot price these steps: no fixed part
            fixed = 0.0
        if not (math.isfinite(fixed) and fixed > 0):
            fixed = 0.0
        return Preempter(self, service, fixed)


class Running(Protocol):
    """A running sequence as the rule sees it: its request and its admission counter."""

    @property
    def req(self) -> Request: ...

    @property
    def admitted(self) -> int: ...


R = TypeVar("R", bound=Running)


class Preempter:
    """A :class:`PreemptionRule` priced for one run: the decisions every engine calls."""

    __slots__ = ("fixed_s", "rule", "service")

    def __init__(self, rule: PreemptionRule, service: ServiceTime, fixed_s: float = 0.0) -> None:
        self.rule = rule
        self.service = service
        self.fixed_s = fixed_s  # seconds a prefill step costs beyond a decode step, tokens aside

    def recompute_s(self, req: Request) -> float:
        """Seconds to recompute a preempted ``req``: prefill of its prompt and generated tokens."""
        return self.fixed_s + self.service.prefill(req.prompt_tokens + req.generated)

    def running_s(self, req: Request) -> float:
        """Predicted remaining service of a running decoder: its remaining decode."""
        return self.service.decode_s_per_token * req.predicted_remaining

    def should_preempt(
        self,
        head: Request,
        victim: Request,
        key_head: float,
        key_victim: float,
        sharing: int = 1,
        decoders: Sequence[Request] | None = None,
    ) -> bool:
        """Does waiting ``head`` displace running ``victim`` (keys taken at the same instant)?

        ``sharing`` is ``m`` of the module doc; ``W`` is the least remaining
        service of ``decoders`` (read only when the cheaper tests pass, and only
        until one ends too soon), or ``R(victim)`` when None (one server).
        """
        if not key_head < key_victim:
            return False
        rem_h = self.fixed_s + self.service.remaining(head)
        cost = self.rule.price * sharing * self.recompute_s(victim)
        # W <= R(victim) always (the victim is a running decoder): test that bound first.
        if not self.running_s(victim) - rem_h > cost:
            return False
        if decoders is None:
            return True
        running_s = self.running_s
        return all(running_s(d) - rem_h > cost for d in decoders)  # min(...) - rem_h > cost

    def choose_victim(
        self,
        head: Request,
        running: Iterable[R],
        key: Callable[[Request, float], float],
        now: float,
        sharing: int = 1,
        decoders: Sequence[Request] | None = None,
    ) -> R | None:
        """The running sequence ``head`` displaces at ``now``, or None.

        Only the eligible sequence with the worst policy key (ties: latest
        arrival, then latest admitted, as for memory evictions) is considered;
        it is returned when ``head`` beats it by the price. ``running`` must be
        sequences past their prefill, each request's ``generated`` up to date;
        ``sharing`` and ``decoders`` as in :meth:`should_preempt`.
        """
        rule = self.rule
        if decoders is not None:
            # Whatever the victim, its recompute costs at least the fixed part: if W does
            # not beat the head by that, no victim can pay (the same decision, found
            # before reading every candidate's key).
            rem_h = self.fixed_s + self.service.remaining(head)
            floor = rule.price * sharing * self.fixed_s
            running_s = self.running_s
            if not all(running_s(d) - rem_h > floor for d in decoders):
                return None
        worst: R | None = None
        worst_k: tuple[float, float, int] | None = None
        for s in running:
            r = s.req
            if not rule.eligible(r):
                continue
            k = (key(r, now), r.arrival, s.admitted)
            if worst_k is None or k > worst_k:
                worst, worst_k = s, k
        if worst is None or worst_k is None:
            return None
        if self.should_preempt(head, worst.req, key(head, now), worst_k[0], sharing, decoders):
            return worst
        return None


def parse_preemption(spec: str | None) -> PreemptionRule | None:
    """``on`` | ``off`` | ``max=2:early=0.3:price=1.5`` (``on:`` prefix allowed) -> a rule or None."""
    if spec is None:
        return None
    text = spec.strip().lower()
    if text in OFF or not text:
        return None
    parts = [p.strip() for p in text.split(":") if p.strip()]
    if parts and parts[0] == "on":
        parts = parts[1:]
    kwargs: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS:
            known = ", ".join(f"{k}=" for k in _KEYS)
            raise ValueError(
                f"preemption spec {spec!r}: unknown setting {part!r} (on, off, or {known})"
            )
        try:
            kwargs[_KEYS[key]] = int(value) if key == "max" else float(value)
        except ValueError:
            raise ValueError(
                f"preemption spec {spec!r}: {key} must be a number, got {value!r}"
            ) from None
    try:
        return PreemptionRule(**kwargs)
    except ValueError as exc:
        raise ValueError(f"preemption spec {spec!r}: {exc}") from None
