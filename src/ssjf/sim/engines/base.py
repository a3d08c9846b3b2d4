"""What every engine model shares: its run context and the ``Engine`` interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from ssjf.policies import Policy
from ssjf.queue import WaitingQueue
from ssjf.request import Request
from ssjf.sim.cost import CostModel
from ssjf.sim.engines.arrivals import Arrivals
from ssjf.sim.preemption import PreemptionRule


class Feedback(Protocol):
    """What a run tells an online component (e.g. calibration) as it happens.

    ``on_arrival`` is called once per request, just before it first enters the
    waiting queue (never on a re-queue after preemption); it may replace
    ``req.estimate``. It must use only completions that finished by
    ``req.arrival`` (engines report completions in time order, but an engine
    may report some that finish after an arrival before that arrival is
    queued). ``on_complete`` gets each finished request, its true length and
    the completion time.
    """

    def on_arrival(self, req: Request) -> None: ...

    def on_complete(self, req: Request, output_tokens: int, now: float) -> None: ...


@dataclass(slots=True)
class RunContext:
    """One simulation run as an engine sees it; the engine fills the time lists.

    ``prompts`` are effective prompt sizes (at least 1 token: even an empty
    prompt has a begin-of-sequence token to prefill). ``lengths`` are the TRUE
    output lengths, read only by the engine model. ``order`` lists request
    indices by (arrival, index): the order in which requests reach the queue.
    ``preemption`` is the rule by which a waiting request may displace a running
    one (None: never); ``recomputed`` counts, per request, the cached tokens its
    preemptions threw away (to be computed again).
    """

    reqs: list[Request]
    prompts: list[int]
    lengths: list[int]
    order: list[int]
    queue: WaitingQueue
    policy: Policy
    cost: CostModel
    index: dict[int, int]  # id(request) -> its position in ``reqs``
    first_scheduled: list[float]
    first_token: list[float]
    completion: list[float]
    feedback: Feedback | None = field(default=None)
    preemption: PreemptionRule | None = field(default=None)
    recomputed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.recomputed:
            self.recomputed = [0] * len(self.reqs)

    def arrivals(self) -> Arrivals:
        """A fresh feed of this run's requests into its queue, in arrival order."""
        return Arrivals(self.reqs, self.order, self.queue, self.feedback)

    def finish(self, i: int, t: float) -> None:
        """Request ``i`` completed at ``t``: record it and tell the feedback, if any."""
        self.completion[i] = t
        if self.feedback is not None:
            self.feedback.on_complete(self.reqs[i], self.lengths[i], t)


class Engine(ABC):
    """An engine model: the same admission and batching rules whatever the policy.

    The policy only orders the waiting queue; engines admit strictly in that
    order (head of line: if the head does not fit, nothing behind it jumps ahead).
    ``preempts`` says whether the engine applies a :class:`PreemptionRule`.
    """

    preempts: ClassVar[bool] = False

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec string, as accepted by :func:`ssjf.sim.engines.parse_engine`."""

    def validate(self, prompts: list[int], lengths: list[int]) -> None:  # noqa: B027
        """Raise ``ValueError`` if some request can never be served by this engine."""

    def unfit(self, prompts: list[int], lengths: list[int]) -> list[int]:
        """Indices of the requests this engine can never serve (none unless it models memory)."""
        return []

    def fit_fix(self, prompts: list[int], lengths: list[int]) -> str | None:
        """An engine spec (CLI spelling) that would serve every request, when this one cannot."""
        return None

    @abstractmethod
    def run(self, ctx: RunContext) -> None:
        """Serve every request once, filling the time lists of ``ctx``."""
