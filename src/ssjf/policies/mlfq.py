"""Skip-join multi-level feedback queue (FastServe), with promotion against starvation.

No predictor. Level ``i`` has a quantum of ``quantum * 2**i`` tokens; a request
is demoted as it attains service, so level ``i`` holds the requests whose
generated tokens lie in ``[quantum * (2**i - 1), quantum * (2**(i+1) - 1))``
(the cumulative quanta of the levels above), capped at ``levels - 1``.

**Skip-join.** FastServe does not start every job at the top: a job joins the
highest level whose quantum covers its first iteration (the prefill, which
grows with the prompt), so long prompts cannot monopolise the top level. Here
the first iteration is priced by ``ServiceTime``: ``prefill(prompt)`` plus one
decode step, in decode-step equivalents, and the join level is the first whose
quantum is at least that. With free prefill (``prefill_s_per_token = 0``, the
paper's cost model) every request joins level 0. A request's level is the lower
(larger index) of its join level and the level its attained service reached.

**Promotion.** A request that has waited ``promote_after_s`` since it last
entered the queue returns to level 0, where requests are served by arrival.
On a serial engine this bounds every wait: once promoted, a request is passed
only by requests that arrived before it (the bound is stated and checked in
``tests/sim/test_policy_family_sim.py``).

Levels only change while a request runs, so on engines without preemption MLFQ
is skip-join plus FCFS within a level; its feedback acts with preemption. The
preemption rule reads a running request's key too: its time since it entered
the queue includes its run time, so one that has run past ``promote_after_s``
counts as promoted and newcomers do not displace it.
The key folds ``(level, arrival)`` into one float: ``level * 2**40 + arrival``
(arrivals are seconds, far below 2**40 s).
"""

from __future__ import annotations

import math

from ssjf.policies.base import Policy, TruthLookup, register_policy
from ssjf.policies.settings import number, optional_seconds, service_setting
from ssjf.request import Request
from ssjf.service import ServiceTime

#: Distance between levels in the folded key: above any arrival time in seconds.
LEVEL_STRIDE = float(2**40)


@register_policy("mlfq")
class SkipJoinMLFQ(Policy):
    """FastServe's skip-join MLFQ: level from attained service, FCFS within a level."""

    description = "skip-join multi-level feedback queue (FastServe; no predictor)"
    takes_service = True
    # With promotion on (the default) the key changes while a request waits.
    time_dependent = True
    static_unit = None

    def __init__(
        self,
        truth: TruthLookup | None = None,
        levels: int = 8,
        quantum: float = 32,
        promote_after_s: float | str | None = 60.0,
        service: ServiceTime | None = None,
    ) -> None:
        # Defaults: 8 levels of 32 tokens doubling cover 32 * 255 = 8160 generated
        # tokens (past any usual max_tokens); promotion after 60 s matches the
        # gateway's default max_wait_s.
        super().__init__(truth)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(
                f"policy 'mlfq': setting 'levels' must be an integer >= 1, got {levels!r}"
            )
        self.quantum = number("mlfq", "quantum", quantum, minimum=0.0, strict=True)
        self.promote_after_s = optional_seconds("mlfq", "promote_after_s", promote_after_s)
        self.levels = levels
        self.service = service_setting("mlfq", service)
        self.time_dependent = self.promote_after_s is not None

    def join_level(self, req: Request) -> int:
        """The first level whose quantum covers the request's first iteration (prefill + a step)."""
        first = self.service.prefill(req.prompt_tokens) / self.service.decode_s_per_token + 1.0
        ratio = first / self.quantum
        return 0 if ratio <= 1.0 else math.ceil(math.log2(ratio))

    def attained_level(self, generated: int) -> int:
        """The level reached after ``generated`` tokens on the doubling ladder."""
        return int(generated / self.quantum + 1.0).bit_length() - 1

    def level(self, req: Request, now: float) -> int:
        """Current level of ``req``: 0 once it waited ``promote_after_s``."""
        if self.promote_after_s is not None and req.waited(now) >= self.promote_after_s:
            return 0
        lvl = max(self.join_level(req), self.attained_level(req.generated))
        return min(lvl, self.levels - 1)

    def key(self, req: Request, now: float) -> float:
        return self.level(req, now) * LEVEL_STRIDE + req.arrival

    def __repr__(self) -> str:
        return (
            f"SkipJoinMLFQ(levels={self.levels}, quantum={self.quantum:g}, "
            f"promote_after_s={self.promote_after_s!r})"
        )
