"""Job size for length policies: output tokens, or service time (prefill + decode).

Not a policy: the shared setting ``size`` of ``sjf``, ``ssjf``, ``srpt``,
``ssrpt`` (and ``isrtf``). ``size=tokens`` (the default, the paper's key)
orders by output tokens; ``size=service`` orders by seconds under
``ssjf.service.ServiceTime``, so a long prompt counts as work. On prefill-heavy
traffic (prompts of tens of thousands of tokens) that is most of the work.
"""

from __future__ import annotations

from typing import Literal

from ssjf.policies.base import Policy, TruthLookup
from ssjf.policies.settings import service_setting
from ssjf.request import Request
from ssjf.service import ServiceTime

Size = Literal["tokens", "service"]
SIZES: tuple[str, ...] = ("tokens", "service")


class SizedPolicy(Policy):
    """A length policy whose key is in tokens or, with ``size="service"``, in seconds."""

    takes_service = True
    # The class says "tokens" (a static key) so configuration accepts it for engine
    # priorities; an instance with size=service says "seconds".
    static_unit: Literal["arrival", "tokens", "seconds"] | None = "tokens"

    def __init__(
        self,
        truth: TruthLookup | None = None,
        size: str = "tokens",
        service: ServiceTime | None = None,
    ) -> None:
        super().__init__(truth)
        if size not in SIZES:
            raise ValueError(
                f"policy {self.name!r}: setting 'size' must be one of {SIZES}, got {size!r}"
            )
        self.size = size
        self.service = service_setting(self.name, service)
        # The gateway maps a static key to an engine priority by its unit.
        self.static_unit = "seconds" if size == "service" else "tokens"

    @property
    def by_service(self) -> bool:
        return self.size == "service"

    def true_total(self, req: Request) -> float:
        """Oracle size of the whole request: true output tokens, or its true service time."""
        assert self._truth is not None
        out = self._truth(req)
        if not self.by_service:
            return out
        return self.service.prefill(req.prompt_tokens) + self.service.decode_s_per_token * out

    def true_remaining(self, req: Request) -> float:
        """Oracle work left: true tokens still to come, or the seconds to (re)prefill and finish.

        In seconds it prices like ``ServiceTime.remaining``: a request that has
        generated tokens and waits again recomputes its prompt and those tokens.
        """
        assert self._truth is not None
        left = self._truth(req) - req.generated
        if not self.by_service:
            return left
        redo = req.prompt_tokens + req.generated
        return self.service.prefill(redo) + self.service.decode_s_per_token * left

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size!r})"
