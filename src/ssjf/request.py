"""The request as a scheduler sees it: no true output length here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ssjf.estimate import LengthEstimate


@dataclass(slots=True, eq=False)
class Request:
    """A request waiting for, or receiving, service.

    Holds only what a real scheduler could observe: arrival time, prompt size,
    the client's ``max_tokens``, a predicted length, tokens generated so far.
    The true output length lives with the engine model (simulator) or is simply
    unknown (gateway); oracle policies get it through an explicit lookup.
    ``tenant`` and ``tier`` are who sent it and its priority class (see
    ``ssjf.fair_queue`` and ``ssjf.queue``).
    Identity is by object (``eq=False``) so requests can sit in sets and heaps.
    """

    id: int | str
    arrival: float
    prompt_tokens: int
    max_tokens: int | None = None
    estimate: LengthEstimate | None = None
    prompt: str | None = None
    model: str | None = None
    #: Tokens generated so far (kept across recompute preemptions).
    generated: int = 0
    #: Times this request was preempted and put back in the queue.
    preemptions: int = 0
    #: When it last entered the waiting queue (arrival, or a preemption).
    enqueued_at: float = field(default=-1.0)
    #: Who sent it (the gateway's tenant of the API key); None is the default tenant.
    tenant: str | None = None
    #: Priority tier, ordered ahead of the policy key: lower is served first. Only
    #: trusted clients may set a non-zero tier; enforcing that is the gateway's job.
    tier: int = 0

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0:
            raise ValueError(f"request {self.id!r}: prompt_tokens must be >= 0")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"request {self.id!r}: max_tokens must be >= 1")
        if self.enqueued_at < 0:
            self.enqueued_at = self.arrival

    @property
    def predicted_tokens(self) -> float:
        """Predicted output length, capped by ``max_tokens``; unknown -> max_tokens or 0."""
        if self.estimate is None:
            return float(self.max_tokens) if self.max_tokens is not None else 0.0
        point = self.estimate.point
        return min(point, float(self.max_tokens)) if self.max_tokens is not None else point

    @property
    def predicted_remaining(self) -> float:
        """Predicted tokens still to generate given ``generated``."""
        if self.estimate is None:
            left = self.predicted_tokens - self.generated
            return max(left, 1.0)
        left = self.estimate.remaining(self.generated)
        if self.max_tokens is not None:
            left = min(left, float(self.max_tokens - self.generated))
        return max(left, 1.0)

    def waited(self, now: float) -> float:
        """Seconds spent in the queue since the last (re-)enqueue."""
        return max(0.0, now - self.enqueued_at)
