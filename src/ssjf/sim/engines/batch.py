"""Request-level (dynamic) batching: run a batch until its longest member finishes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ssjf.sim.engines.arrivals import Arrivals, horizon
from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.padded import (
    check_fits,
    check_oom,
    halves,
    kv_to_fit,
    run_padded,
    unfit_alone,
)


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

    ``kv_tokens`` (spec ``kv=T``): a KV-cache budget in tokens, for comparing
    with Magnus "under the same memory". The batch size stays ``max_batch``
    (a fixed-size engine knows no lengths); a batch that outgrows the budget at
    run time is aborted and split in halves, run next; ``oom`` (spec ``oom=keep``)
    says whether its unfinished members restart or keep their tokens (the rules
    of :mod:`ssjf.sim.engines.padded`, the same for Magnus). The overflow-free size
    for a length cap ``C`` is ``kv // C`` (``ssjf bench magnus`` reports both).
    """

    max_batch: int = 8  # a common static batch size for a 7B-13B model on one GPU
    timeout_s: float = 0.0  # no waiting: never delay work to fill a batch
    group: bool = False  # plain policy order unless asked: grouping is Magnus's idea
    kv_tokens: int | None = None  # no memory limit unless asked (the engine's original model)
    oom: str = "restart"  # a static batch that runs out of memory fails as a whole

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"BatchEngine.max_batch must be >= 1, got {self.max_batch}")
        if not self.timeout_s >= 0:
            raise ValueError(f"BatchEngine.timeout_s must be >= 0, got {self.timeout_s}")
        if self.kv_tokens is not None and self.kv_tokens < 1:
            raise ValueError(f"BatchEngine.kv_tokens must be >= 1, got {self.kv_tokens}")
        check_oom(self.oom, "BatchEngine")

    @property
    def spec(self) -> str:
        return (
            f"batch:{self.max_batch}"
            + (f":timeout={self.timeout_s:g}" if self.timeout_s else "")
            + (":group" if self.group else "")
            + (f":kv={self.kv_tokens}" if self.kv_tokens is not None else "")
            + (f":oom={self.oom}" if self.oom != "restart" else "")
        )

    def unfit(self, prompts: list[int], lengths: list[int]) -> list[int]:
        return [] if self.kv_tokens is None else unfit_alone(prompts, lengths, self.kv_tokens)

    def fit_fix(self, prompts: list[int], lengths: list[int]) -> str | None:
        if not self.unfit(prompts, lengths):
            return None
        kv = kv_to_fit(prompts, lengths)
        return BatchEngine(self.max_batch, self.timeout_s, self.group, kv, self.oom).spec

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        if self.kv_tokens is not None:
            fix = self.fit_fix(prompts, lengths) or self.spec
            check_fits(prompts, lengths, self.kv_tokens, self.spec, fix)

    def run(self, ctx: RunContext) -> None:
        """Form and run batches until every request completed."""
        n = len(ctx.order)
        arrivals = ctx.arrivals()
        split: deque[list[int]] = deque()  # halves of an overflowed batch, run first
        done = 0
        t = 0.0
        while done < n:
            if split:
                arrivals.admit(t)
                members = split.popleft()
            else:
                t = self._wait_for_batch(ctx, arrivals, t)
                members = self._take(ctx, t)
            t, left = run_padded(ctx, members, t, self.kv_tokens, self.oom)
            done += len(members) - len(left)
            split.extendleft(reversed(halves(left)) if left else ())

    def _wait_for_batch(self, ctx: RunContext, arrivals: Arrivals, t: float) -> float:
        """The time the next batch starts: work is waiting, and the timeout rule is met."""
        queue, cap, timeout = ctx.queue, self.max_batch, self.timeout_s
        t = arrivals.until_work(t)
        if len(queue) < cap and timeout > 0:
            # Idle with work waiting since `t`: wait for a full batch or the timeout.
            deadline = t + timeout
            while len(queue) < cap and arrivals.next_time <= horizon(deadline):
                t = min(arrivals.next_time, deadline)
                arrivals.admit(t)
            if len(queue) < cap:
                t = deadline
        return t

    def _take(self, ctx: RunContext, t: float) -> list[int]:
        """Indices of the next batch's members, taken out of the queue."""
        queue, index, cap = ctx.queue, ctx.index, self.max_batch
        if self.group and len(queue) > cap:
            head = queue.pop(t)
            target = head.predicted_tokens
            rest = sorted(
                queue, key=lambda r: (abs(r.predicted_tokens - target), r.arrival, index[id(r)])
            )[: cap - 1]
            for r in rest:
                queue.remove(r)
            return [index[id(head)]] + [index[id(r)] for r in rest]
        return [index[id(queue.pop(t))] for _ in range(min(cap, len(queue)))]
