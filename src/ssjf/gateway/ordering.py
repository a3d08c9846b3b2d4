"""The one mapping from the configured policy (and starvation guard) to an engine's priority.

Engines that order their own waiting queue (vLLM ``--scheduling-policy
priority``, SGLang ``--enable-priority-scheduling``, TensorRT-LLM, Dynamo) take
one number per request, fixed when it is sent. ``EngineOrdering.key`` turns a
scheduled request into that number, lower first, for every backend; each
backend only translates it to its engine's convention. Rules:

- ``fcfs`` (a policy whose key orders like arrival): every request gets the same
  key, so the engine's own tie-break (arrival) decides.
- a token-valued static key (``ssjf``, ``ssrpt``), guard off: the key bucketed by
  ``priority_bucket_tokens`` and clamped to ``priority_max`` (coarse buckets keep
  arrival order among requests of about the same length). A key in seconds
  (``ssjf:size=service``, ``isrtf``) is first converted to decode-token
  equivalents (divided by ``seconds_per_token``), then treated the same way.
- the same with the guard on: the guard's deadline, ``arrival + min(max_wait_s,
  wait_factor x key x seconds_per_token)``, in units of ``priority_time_unit_s``
  since the gateway started. Serving earliest deadline first keeps the policy's
  order among requests that arrive together and bounds every wait: once a request
  has waited ``max_wait_s``, nothing that arrives later has an earlier deadline.
  This is how the guard reaches engines that the gateway does not hold a queue for.
- a tier (trusted clients' priority class) comes first: ``tier x TIER_STRIDE``.
- policies with no static form (``hrrn``: its key changes while a request waits;
  ``ltr``: a score with no unit) have no key (``None``: the backend sends no
  priority); the config then requires the gateway-held queue, which evaluates
  keys itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ssjf.policies import Policy, make_policy, policy_class
from ssjf.queue import StarvationGuard
from ssjf.request import Request
from ssjf.service import ServiceTime

if TYPE_CHECKING:
    from ssjf.gateway.config import GatewayConfig

#: Distance between priority tiers: above any deadline key (10**12 units of 10 ms is
#: 300 years of gateway uptime) and any token bucket.
TIER_STRIDE = 10**12


class EngineOrdering:
    """Keys engines order by (lower first), derived from the configured policy and guard."""

    def __init__(
        self,
        policy: Policy,
        guard: StarvationGuard | None,
        *,
        bucket_tokens: int,
        priority_max: int,
        time_unit_s: float,
        epoch: float,
        seconds_per_token: float = 0.02,
    ) -> None:
        self.policy = policy
        self.guard = guard if guard is not None and guard.enabled else None
        self.bucket_tokens = bucket_tokens
        self.priority_max = priority_max
        self.time_unit_s = time_unit_s
        #: Deadlines are sent relative to this monotonic time (the gateway's start).
        self.epoch = epoch
        #: Converts a key in seconds to decode-token equivalents (the config's rate).
        self.seconds_per_token = seconds_per_token
        unit = None if policy.time_dependent else policy.static_unit
        self.unit = unit

    @classmethod
    def from_config(
        cls, cfg: GatewayConfig, epoch: float, policy: Policy | None = None
    ) -> EngineOrdering:
        """The ordering a gateway with settings ``cfg`` applies (``policy`` if already built)."""
        return cls(
            policy if policy is not None else make_policy(cfg.policy, **policy_params_of(cfg)),
            guard_of(cfg),
            bucket_tokens=cfg.priority_bucket_tokens,
            priority_max=cfg.priority_max,
            time_unit_s=cfg.priority_time_unit_s,
            epoch=epoch,
            seconds_per_token=cfg.seconds_per_token,
        )

    @property
    def expressible(self) -> bool:
        """Whether an engine priority can carry this policy's order."""
        return self.unit is not None

    def key(self, req: Request) -> int | None:
        """The engine priority of ``req`` (lower first), or None when it has none."""
        unit = self.unit
        if unit is None:
            return None
        base = req.tier * TIER_STRIDE if req.tier else 0
        if unit == "arrival":
            return base
        tokens = self.policy.key(req, req.arrival)
        if unit == "seconds":
            tokens /= self.seconds_per_token
        guard = self.guard
        if guard is None:
            return base + self.rank_tokens(tokens)
        bound = math.inf if guard.max_wait_s is None else guard.max_wait_s
        if guard.wait_factor is not None:
            bound = min(bound, guard.wait_factor * max(tokens, 0.0) * guard.seconds_per_token)
        deadline = req.arrival - self.epoch + bound
        return base + max(0, int(deadline / self.time_unit_s))

    def rank_tokens(self, tokens: float) -> int:
        """Bucketed token count, clamped to ``[0, priority_max]``."""
        return min(int(max(tokens, 0.0) // self.bucket_tokens), self.priority_max)


def service_of(cfg: GatewayConfig) -> ServiceTime:
    """How a gateway with settings ``cfg`` prices a request in seconds (prefill + decode)."""
    return ServiceTime(
        decode_s_per_token=cfg.seconds_per_token,
        prefill_s_per_token=cfg.prefill_seconds_per_token,
    )


def policy_params_of(cfg: GatewayConfig) -> dict[str, Any]:
    """The configured policy's settings plus the time units it takes, from ``cfg``."""
    params = dict(cfg.policy_params)
    cls = policy_class(cfg.policy)
    if cls.takes_seconds_per_token:
        # The same time unit as the guard's deadlines (as the simulator does).
        params.setdefault("seconds_per_token", cfg.seconds_per_token)
    if cls.takes_service:
        params.setdefault("service", service_of(cfg))
    return params


def guard_of(cfg: GatewayConfig) -> StarvationGuard:
    """The starvation guard a gateway with settings ``cfg`` applies."""
    return StarvationGuard(
        max_wait_s=cfg.max_wait_s,
        wait_factor=cfg.wait_factor,
        seconds_per_token=cfg.seconds_per_token,
    )
