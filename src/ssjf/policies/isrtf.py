"""ISRTF: shortest predicted remaining service time, re-evaluated as a request progresses.

ELIS's ISRTF orders by the re-estimated remaining work. Here that is exactly
``ssrpt:size=service``: the estimate's conditional remaining length given the
tokens generated (``LengthEstimate.remaining``), priced in seconds with the
prompt's (re)prefill by ``ServiceTime.remaining``. The key is recomputed each
time the request enters the queue (arrival, preemption), and whatever updates
``req.estimate`` (a re-prediction every N tokens, calibration) acts through it.
So this file is an alias, not a second implementation.
"""

from __future__ import annotations

from ssjf.policies.base import TruthLookup, register_policy
from ssjf.policies.builtin import SpeculativeSRPT
from ssjf.service import ServiceTime


@register_policy("isrtf")
class ISRTF(SpeculativeSRPT):
    """``ssrpt`` with ``size="service"`` by default (ELIS's ISRTF)."""

    description = "iterative shortest remaining time first: ssrpt in service time (ELIS)"

    def __init__(
        self,
        truth: TruthLookup | None = None,
        size: str = "service",
        service: ServiceTime | None = None,
    ) -> None:
        super().__init__(truth, size=size, service=service)
