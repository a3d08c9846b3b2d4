"""What every engine model shares: its run context and the ``Engine`` interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ssjf.policies import Policy
from ssjf.queue import WaitingQueue
from ssjf.request import Request
from ssjf.sim.cost import CostModel

#: Relative tolerance when comparing an arrival with a step boundary. Step
#: boundaries are sums of floats, so two exact models of the same schedule (the
#: event-skipping engine and the step reference) put a boundary a few ulps apart;
#: an arrival on a boundary (timestamps and step costs on the same grid, e.g.
#: milliseconds and the paper's 0.02 s) would then be admitted by one and not by
#: the other. Arrivals within this tolerance after a boundary count as present
#: at it (a shift of at most 10 us per 1e5 s of simulated time).
TIME_TOL = 1e-10


def horizon(t: float) -> float:
    """Latest arrival time that counts as present at step boundary ``t``."""
    return t + TIME_TOL * (1.0 + abs(t))


@dataclass(slots=True)
class RunContext:
    """One simulation run as an engine sees it; the engine fills the time lists.

    ``prompts`` are effective prompt sizes (at least 1 token: even an empty
    prompt has a begin-of-sequence token to prefill). ``lengths`` are the TRUE
    output lengths, read only by the engine model. ``order`` lists request
    indices by (arrival, index): the order in which requests reach the queue.
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


class Engine(ABC):
    """An engine model: the same admission and batching rules whatever the policy.

    The policy only orders the waiting queue; engines admit strictly in that
    order (head of line: if the head does not fit, nothing behind it jumps ahead).
    """

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec string, as accepted by :func:`ssjf.sim.engines.parse_engine`."""

    def validate(self, prompts: list[int], lengths: list[int]) -> None:  # noqa: B027
        """Raise ``ValueError`` if some request can never be served by this engine."""

    @abstractmethod
    def run(self, ctx: RunContext) -> None:
        """Serve every request once, filling the time lists of ``ctx``."""
