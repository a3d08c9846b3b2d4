"""What the simulator replays: a request plus its hidden true output length."""

from __future__ import annotations

from dataclasses import dataclass

from ssjf.request import Request


@dataclass(slots=True, eq=False)
class Job:
    """A request (what schedulers see) and its TRUE output length.

    Only the engine model and oracle policies (through an explicit truth
    lookup wired by :func:`ssjf.sim.simulate`) read ``output_tokens``.
    """

    request: Request
    output_tokens: int

    def __post_init__(self) -> None:
        if int(self.output_tokens) != self.output_tokens or self.output_tokens < 1:
            raise ValueError(
                f"job {self.request.id!r}: output_tokens must be an integer >= 1, "
                f"got {self.output_tokens!r}"
            )
        self.output_tokens = int(self.output_tokens)
