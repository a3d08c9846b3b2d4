"""Serial engine: one request at a time, no batching."""

from __future__ import annotations

from dataclasses import dataclass

from ssjf.sim.engines.base import Engine, RunContext


@dataclass(frozen=True, slots=True)
class SerialEngine(Engine):
    """Serves one request at a time to completion; never idles while requests wait."""

    @property
    def spec(self) -> str:
        return "serial"

    def run(self, ctx: RunContext) -> None:
        """Serve requests one by one in the queue's order."""
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
