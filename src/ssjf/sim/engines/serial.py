"""Serial engine: one request at a time, no batching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ssjf.request import Request
from ssjf.sim.engines.arrivals import horizon
from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.continuous import steps_to_arrival


@dataclass(frozen=True, slots=True)
class SerialEngine(Engine):
    """Serves one request at a time to completion; never idles while requests wait.

    With a preemption rule (``RunContext.preemption``), the request in service
    is checked at the first step boundary at which each new arrival is present:
    the queue's head displaces it by recompute when the rule says so (see
    :mod:`ssjf.sim.preemption`). A re-admitted request prefills its prompt plus
    the tokens it generated, and that step emits its next token.
    """

    preempts: ClassVar[bool] = True

    @property
    def spec(self) -> str:
        return "serial"

    def run(self, ctx: RunContext) -> None:
        """Serve requests one by one in the queue's order."""
        if ctx.preemption is not None:
            self._run_preemptive(ctx)
            return
        queue, index, prompts, lengths, cost = (
            ctx.queue, ctx.index, ctx.prompts, ctx.lengths, ctx.cost)  # fmt: skip
        arrivals = ctx.arrivals()
        t = 0.0
        for _ in range(len(ctx.order)):
            t = arrivals.until_work(t)
            req = queue.pop(t)
            i = index[id(req)]
            p, length = prompts[i], lengths[i]
            ctx.first_scheduled[i] = t
            t += cost.step_time(p, 1, 0, 1)
            ctx.first_token[i] = t
            req.generated = 1
            t += cost.decode_run_time(1, p, length - 1)
            req.generated = length
            ctx.finish(i, t)

    def _run_preemptive(self, ctx: RunContext) -> None:
        """As :meth:`run`, stopping decode runs at arrivals while the job may be preempted."""
        queue, index, prompts, lengths, cost = (
            ctx.queue, ctx.index, ctx.prompts, ctx.lengths, ctx.cost)  # fmt: skip
        assert ctx.preemption is not None
        pre = ctx.preemption.bind(cost)
        rule, key = pre.rule, ctx.policy.key
        arrivals = ctx.arrivals()
        t = 0.0
        done, n = 0, len(ctx.order)
        while done < n:
            t = arrivals.until_work(t)
            req = queue.pop(t)
            i = index[id(req)]
            length = lengths[i]
            if ctx.first_scheduled[i] != ctx.first_scheduled[i]:  # NaN: first admission
                ctx.first_scheduled[i] = t
            context = prompts[i] + req.generated  # tokens cached after the prefill
            before = arrivals.next_time
            t += cost.step_time(context, 1, 0, 1)
            req.generated += 1
            if ctx.first_token[i] != ctx.first_token[i]:
                ctx.first_token[i] = t
            job = _Job(req, done)
            while req.generated < length:
                arrivals.admit(t)
                if arrivals.next_time != before and queue:
                    head = queue.peek(t)
                    if head is not None and pre.choose_victim(head, (job,), key, t) is not None:
                        req.preemptions += 1
                        ctx.recomputed[i] += context
                        queue.add(req, t)
                        break
                before = arrivals.next_time
                left = length - req.generated
                ta = arrivals.next_time
                dt = cost.decode_run_time(1, context, left)
                if not rule.eligible(req) or ta > horizon(t + dt):
                    # Eligibility only ends while it runs: no later check could act.
                    t += dt
                    req.generated = length
                    break
                k = steps_to_arrival(cost, 1, context, t, ta, left)
                t += dt if k == left else cost.decode_run_time(1, context, k)
                context += k
                req.generated += k
            if req.generated == length:
                ctx.finish(i, t)
                done += 1


class _Job:
    """The request in service, as :meth:`Preempter.choose_victim` reads it."""

    __slots__ = ("admitted", "req")

    def __init__(self, req: Request, admitted: int) -> None:
        self.req = req
        self.admitted = admitted
