"""Request-level (dynamic) batching: run a batch until its longest member finishes."""

from __future__ import annotations

from dataclasses import dataclass

from ssjf.sim.engines.arrivals import horizon
from ssjf.sim.engines.base import Engine, RunContext


@dataclass(frozen=True, slots=True)
class BatchEngine(Engine):
    """Up to ``max_batch`` requests at a time, each batch run to its longest member's end.

    When the engine is idle and requests wait, it takes up to ``max_batch`` of
    them in the policy's order. If fewer are waiting and ``timeout_s > 0``, it
    waits until ``max_batch`` are there or ``timeout_s`` has passed since the
    engine was idle with work waiting — the same rule for every policy. A batch
    runs one prefill step for all members, then decode steps with
    ``num_seqs = batch size`` until its longest member has all its tokens
    (finished members stay in the batch as padding, as in static batching), and
    every member completes when the batch completes: callers get their response
    when the batch returns. ``first_token`` is the end of the prefill step.

    ``group=True`` (Magnus-style grouping, batch size fixed): the queue's head
    leads the batch and the other seats go to the waiting requests whose
    PREDICTED lengths are closest to the head's (ties: earlier arrival), so
    a batch's members finish at similar times and pad less. It reads only
    predictions, and applies to every policy alike.
    """

    max_batch: int = 8  # a common static batch size for a 7B-13B model on one GPU
    timeout_s: float = 0.0  # no waiting: never delay work to fill a batch
    group: bool = False  # plain policy order unless asked: grouping is Magnus's idea

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"BatchEngine.max_batch must be >= 1, got {self.max_batch}")
        if not self.timeout_s >= 0:
            raise ValueError(f"BatchEngine.timeout_s must be >= 0, got {self.timeout_s}")

    @property
    def spec(self) -> str:
        return (
            f"batch:{self.max_batch}"
            + (f":timeout={self.timeout_s:g}" if self.timeout_s else "")
            + (":group" if self.group else "")
        )

    def run(self, ctx: RunContext) -> None:
        """Form and run batches until every request completed."""
        queue, index, prompts, lengths, cost = (
            ctx.queue, ctx.index, ctx.prompts, ctx.lengths, ctx.cost)  # fmt: skip
        reqs, n, cap, timeout = ctx.reqs, len(ctx.order), self.max_batch, self.timeout_s
        arrivals = ctx.arrivals()
        done = 0
        t = 0.0
        while done < n:
            t = arrivals.until_work(t)
            if len(queue) < cap and timeout > 0:
                # Idle with work waiting since `t`: wait for a full batch or the timeout.
                deadline = t + timeout
                while len(queue) < cap and arrivals.next_time <= horizon(deadline):
                    t = min(arrivals.next_time, deadline)
                    arrivals.admit(t)
                if len(queue) < cap:
                    t = deadline
            if self.group and len(queue) > cap:
                head = queue.pop(t)
                target = head.predicted_tokens
                rest = sorted(
                    queue, key=lambda r: (abs(r.predicted_tokens - target), r.arrival, index[id(r)])
                )[: cap - 1]
                for r in rest:
                    queue.remove(r)
                members = [index[id(head)]] + [index[id(r)] for r in rest]
            else:
                members = [index[id(queue.pop(t))] for _ in range(min(cap, len(queue)))]
            m = len(members)
            total_prompt = 0
            longest = 0
            for i in members:
                ctx.first_scheduled[i] = t
                total_prompt += prompts[i]
                longest = max(longest, lengths[i])
            t += cost.step_time(total_prompt, m, 0, m)
            first = t
            t += cost.decode_run_time(m, total_prompt, longest - 1)
            for i in members:
                ctx.first_token[i] = first
                ctx.finish(i, t)
                reqs[i].generated = lengths[i]
            done += m
