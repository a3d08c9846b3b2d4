"""Continuous (iteration-level) batching that skips from event to event.

Same rules as :class:`StepContinuousEngine` (see :class:`ContinuousParams`), but
between events — an arrival that could be admitted, a completion, the KV cache
running out, a prefill — every step is the same pure decode step of the same
sequences, so ``k`` of them are advanced at once with the cost model's closed
form. Decisions still happen only at step boundaries, exactly as in the
reference.

The bookkeeping that makes a skip O(1) instead of O(running) is
:class:`~ssjf.sim.engines.continuous_kv.KVBlocks`: a global step counter ``S``,
decoders' context as ``base + S``, and a heap of decoders keyed by the absolute
step at which they finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heappop, heappush
from typing import ClassVar

from ssjf.sim.cost import CostModel
from ssjf.sim.engines.arrivals import TIME_TOL, horizon
from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.continuous_config import ContinuousParams
from ssjf.sim.engines.continuous_kv import KVBlocks, Seq
from ssjf.sim.preemption import Preempter


@dataclass(frozen=True, slots=True)
class ContinuousEngine(ContinuousParams, Engine):
    """vLLM-like continuous batching (rules in :class:`ContinuousParams`), event to event."""

    preempts: ClassVar[bool] = True

    @property
    def spec(self) -> str:
        return self._spec(self._SPEC_KIND)

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        self.check_fits(prompts, lengths)

    def run(self, ctx: RunContext) -> None:
        """Serve every request, skipping runs of identical decode steps."""
        queue, cost, index, prompts, lengths = (
            ctx.queue, ctx.cost, ctx.index, ctx.prompts, ctx.lengths)  # fmt: skip
        first_scheduled, first_token = ctx.first_scheduled, ctx.first_token
        bs, total = self.block_size, self.num_kv_blocks
        max_seqs, max_tokens = self.max_num_seqs, self.max_num_batched_tokens
        # Between arrivals, a static order with no guard cannot bring a fitting request
        # to the head; otherwise the head may change with time: step one by one then.
        head_may_change = ctx.policy.time_dependent or queue.guard is not None
        pre = ctx.preemption.bind(cost) if ctx.preemption is not None else None
        # Decoders that may become preemption victims: (last eligible step, admitted,
        # seq). Eligibility only ends while a sequence runs, so a run of decode steps
        # that starts with none can skip arrivals: no check inside it could act.
        cands: list[tuple[int, int, Seq]] = []
        arrivals = ctx.arrivals()
        kv = KVBlocks(bs)
        running: dict[int, Seq] = {}  # admission order, as the reference's list
        prefilling: list[Seq] = []
        heap: list[tuple[int, int, Seq]] = []  # (finish step, admitted, seq) of decoders
        n = len(ctx.order)
        S = 0  # global step counter
        t = 0.0
        done = admissions = 0
        while done < n:
            before = arrivals.next_time
            arrivals.admit(t)
            if not running and not queue:
                t = arrivals.next_time
                continue
            if pre is not None and arrivals.next_time != before and _live(cands, S):
                _preempt_for_head(ctx, pre, self, running, prefilling, kv, cands, S, t)
            # 1. Decode tokens: the cache must hold every decoder's context + 1.
            demand = kv.demand(S + 1)
            if demand > total:
                _make_room(ctx, running, prefilling, kv, S, t, total)
                demand = kv.demand(S + 1)
            free = total - demand
            budget = max_tokens - kv.decoders
            # 2. Prefill chunks, then 3. admissions in queue order (head of line).
            chunks: list[tuple[Seq, int]] = []
            for s in prefilling:
                if budget <= 0:
                    break
                c = s.plen - s.prefilled
                if c > budget:
                    c = budget
                chunks.append((s, c))
                budget -= c
            while budget > 0 and len(running) < max_seqs and queue:
                req = queue.peek(t)
                i = index[id(req)]
                plen = prompts[i] + req.generated  # type: ignore[union-attr]
                need = -(-plen // bs)
                if need > free:
                    break
                queue.pop(t)
                free -= need
                s = Seq(i, req, plen, lengths[i], admissions)  # type: ignore[arg-type]
                s.blocks = need
                kv.prefill_blocks += need
                running[admissions] = s
                admissions += 1
                prefilling.append(s)
                if first_scheduled[i] != first_scheduled[i]:  # NaN: first admission
                    first_scheduled[i] = t
                c = plen if plen < budget else budget
                chunks.append((s, c))
                budget -= c
            if chunks:
                # 4a. One step with prefill work.
                prefill_tokens = finishing = 0
                context = kv.sum_base + kv.decoders * S  # the decoders' context
                for s, c in chunks:
                    prefill_tokens += c
                    context += s.prefilled
                    if s.prefilled + c == s.plen:
                        finishing += 1
                t += cost.step_time(prefill_tokens, kv.decoders + len(chunks), context, finishing)
                S += 1
            elif kv.decoders:
                # 4b. A run of k identical pure decode steps, up to the next completion,
                # admissible arrival or memory limit, whichever comes first.
                while heap[0][2].r < 0:
                    heappop(heap)  # stale: the sequence was preempted
                k = full = heap[0][0] - S  # steps to the next completion
                n_dec = kv.decoders
                context = kv.sum_base + n_dec * S  # the decoders' context
                dt = cost.decode_run_time(n_dec, context, k)
                admissible = len(running) < max_seqs and budget > 0
                if k > 1 and (admissible or (pre is not None and _live(cands, S + 1))):
                    if admissible and queue and head_may_change:
                        k = 1
                    elif arrivals.next_time <= horizon(t + dt):
                        # The next arrival is present by the k-th boundary (boundaries
                        # only move later with k, so otherwise it comes after them all).
                        k = steps_to_arrival(cost, n_dec, context, t, arrivals.next_time, k)
                if k > 1 and demand + n_dec * ((k - 2) // bs + 1) > total:
                    # The cache may run out within the run (k - 1 more steps add at most
                    # that many blocks): stop at the first boundary that lacks blocks.
                    k = kv.fitting_steps(S, k, total)
                if k != full:
                    dt = cost.decode_run_time(n_dec, context, k)
                t += dt
                S += k
            else:
                continue  # everyone was preempted: schedule again at the same time
            # 5. Completions of decoders, then prefills that finished in this step.
            while heap and heap[0][0] <= S:
                s = heappop(heap)[2]
                if s.r < 0:
                    continue  # stale entry: preempted (a re-admission is a new Seq)
                kv.stop_decoding(s)
                del running[s.admitted]
                s.req.generated = s.length
                ctx.finish(s.i, t)
                done += 1
            for s, c in chunks:
                s.prefilled += c
                if s.prefilled != s.plen:
                    continue
                prefilling.remove(s)
                kv.prefill_blocks -= s.blocks
                g = s.req.generated + 1
                s.req.generated = g
                if first_token[s.i] != first_token[s.i]:
                    first_token[s.i] = t
                if g == s.length:
                    del running[s.admitted]
                    ctx.finish(s.i, t)
                    done += 1
                    continue
                kv.start_decoding(s, S)
                s.gbase = g - S
                heappush(heap, (S + s.length - g, s.admitted, s))
                if pre is not None and s.req.preemptions < pre.rule.max_per_request:
                    last = pre.rule.last_eligible(s.req)
                    if g <= last:
                        heappush(cands, (S + last - g, s.admitted, s))


def steps_to_arrival(
    cost: CostModel, n_dec: int, context: int, t: float, ta: float, most: int
) -> int:
    """Fewest decode steps after whose boundary an arrival at ``ta`` is present.

    ``most`` steps are known to be enough. The closed-form root is only a first
    guess; the loops make the answer exact against the arrival rule
    (:func:`horizon`) and ``decode_run_time``.
    """
    k = cost.decode_steps_to_reach(n_dec, context, ta - t - TIME_TOL * (1.0 + abs(ta)))
    if k < 1:
        k = 1
    while k > 1 and ta <= horizon(t + cost.decode_run_time(n_dec, context, k - 1)):
        k -= 1
    while ta > horizon(t + cost.decode_run_time(n_dec, context, k)):
        k += 1
    return k if k < most else most


def _make_room(
    ctx: RunContext, running: dict[int, Seq], prefilling: list[Seq], kv: KVBlocks,
    S: int, t: float, total: int,
) -> None:  # fmt: skip
    """Memory limit at step ``S``: replay the reference's per-sequence allocation.

    Decoders get explicit block counts for this one boundary; each decode token
    that needs a new block takes a free one or preempts the running sequence with
    the worst policy key (ties: latest arrival, then latest admitted).
    """
    bs, key = kv.block_size, ctx.policy.key
    held = kv.prefill_blocks
    for s in running.values():
        if s.r >= 0:
            s.req.generated = s.gbase + S
            s.blocks = -(-(s.base + S) // bs)
            held += s.blocks
    free = total - held
    for s in list(running.values()):
        if s.r < 0 or s.admitted not in running:
            continue
        if -(-(s.base + S + 1) // bs) == s.blocks:
            continue
        while True:
            if free > 0:
                free -= 1
                s.blocks += 1
                break
            victim = max(running.values(), key=lambda v: (key(v.req, t), v.req.arrival, v.admitted))
            _evict(victim, ctx, running, prefilling, kv, S, t)
            free += victim.blocks
            if victim is s:
                break


def _evict(
    s: Seq, ctx: RunContext, running: dict[int, Seq], prefilling: list[Seq], kv: KVBlocks,
    S: int, now: float,
) -> None:  # fmt: skip
    """Preempt ``s`` by recompute: free its blocks, requeue it with its generated tokens."""
    del running[s.admitted]
    if s.r >= 0:
        s.req.generated = s.gbase + S
        ctx.recomputed[s.i] += s.base + S  # its context: every cached token
        kv.stop_decoding(s)
    else:
        ctx.recomputed[s.i] += s.prefilled
        prefilling.remove(s)
        kv.prefill_blocks -= s.blocks
    s.req.preemptions += 1
    ctx.queue.add(s.req, now)


def _live(cands: list[tuple[int, int, Seq]], step: int) -> bool:
    """Is some decoder still a possible victim at ``step``? Drops dead heads of ``cands``."""
    while cands:
        last, _, s = cands[0]
        if s.r >= 0 and last >= step:
            return True
        heappop(cands)  # finished, preempted, or past its early fraction
    return False


def _preempt_for_head(
    ctx: RunContext, pre: Preempter, params: ContinuousParams, running: dict[int, Seq],
    prefilling: list[Seq], kv: KVBlocks, cands: list[tuple[int, int, Seq]], S: int, t: float,
) -> None:  # fmt: skip
    """A new arrival at step ``S``: preempt for the queue's head while it does not fit and pays.

    The head fits when a slot is free and its prefill fits in the blocks left
    once every decoder has its next token's block (the reference's rule).
    """
    queue, index, prompts = ctx.queue, ctx.index, ctx.prompts
    bs, total, key = params.block_size, params.num_kv_blocks, ctx.policy.key

    while True:
        head = queue.peek(t)
        if head is None:
            return
        need = -(-(prompts[index[id(head)]] + head.generated) // bs)
        if len(running) < params.max_num_seqs and need <= total - kv.demand(S + 1):
            return
        decoders = [s.req for s in running.values() if s.r >= 0]  # oldest first: done soonest
        for s in running.values():
            if s.r >= 0:
                s.req.generated = s.gbase + S
        live = [s for last, _, s in cands if s.r >= 0 and last >= S]
        victim = pre.choose_victim(head, live, key, t, len(running), decoders)
        if victim is None:
            return
        _evict(victim, ctx, running, prefilling, kv, S, t)
