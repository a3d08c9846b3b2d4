"""Step-by-step continuous batching: the plain reference for the event-skipping engine.

Deliberately simple and independent of :mod:`ssjf.sim.engines.continuous`: one
loop iteration per engine step, explicit per-sequence state, the rules of
:class:`ContinuousParams` written out literally. Slow; used by tests and the
``sim-speed`` benchmark to check the fast engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ssjf.request import Request
from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.continuous_config import ContinuousParams


class _Seq:
    __slots__ = ("admitted", "blocks", "ctx", "i", "length", "plen", "prefilled", "req")

    def __init__(self, i: int, req: Request, plen: int, length: int, admitted: int) -> None:
        self.i = i
        self.req = req
        self.plen = plen  # tokens to prefill: prompt + tokens generated before a preemption
        self.length = length
        self.prefilled = 0
        self.ctx = 0  # tokens whose KV is cached (valid once the prefill is done)
        self.blocks = 0
        self.admitted = admitted


@dataclass(frozen=True, slots=True)
class StepContinuousEngine(ContinuousParams, Engine):
    """Reference continuous-batching engine: one loop iteration per step."""

    _SPEC_KIND: ClassVar[str] = "continuous-step"
    preempts: ClassVar[bool] = True

    @property
    def spec(self) -> str:
        return self._spec(self._SPEC_KIND)

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        self.check_fits(prompts, lengths)

    def run(self, ctx: RunContext) -> None:
        """Serve every request, one engine step at a time."""
        queue, policy, cost, recomputed = ctx.queue, ctx.policy, ctx.cost, ctx.recomputed
        pre = ctx.preemption.bind(cost) if ctx.preemption is not None else None
        bs = self.block_size
        n = len(ctx.order)
        arrivals = ctx.arrivals()
        running: list[_Seq] = []
        free = self.num_kv_blocks
        t = 0.0
        done = 0
        admissions = 0

        def evict(seq: _Seq, now: float) -> None:
            nonlocal free
            running.remove(seq)
            free += seq.blocks
            recomputed[seq.i] += seq.ctx if seq.prefilled >= seq.plen else seq.prefilled
            seq.req.preemptions += 1
            queue.add(seq.req, now)

        def fits(req: Request) -> bool:
            """Could ``req`` be admitted once every decoder has its next token's block?"""
            if len(running) >= self.max_num_seqs:
                return False
            grow = sum(
                max(0, -(-(s.ctx + 1) // bs) - s.blocks) for s in running if s.prefilled >= s.plen
            )
            return -(-(ctx.prompts[ctx.index[id(req)]] + req.generated) // bs) <= free - grow

        while done < n:
            before = arrivals.next_time
            arrivals.admit(t)
            if not running and not queue:
                t = arrivals.next_time
                continue
            # 0. Preemption (with a rule): at the first boundary where a new arrival is
            # present, while the head cannot be admitted and beats the worst eligible
            # decoder by the price, that decoder is preempted.
            if pre is not None and arrivals.next_time != before:
                while True:
                    head = queue.peek(t)
                    if head is None or fits(head):
                        break
                    decoding = [s for s in running if s.prefilled >= s.plen]
                    victim = pre.choose_victim(
                        head,
                        decoding,
                        policy.key,
                        t,
                        len(running),
                        [s.req for s in decoding],
                    )
                    if victim is None:
                        break
                    evict(victim, t)
            # 1. Decode tokens for sequences past their prefill; preempt on a full cache.
            for seq in list(running):
                if seq not in running or seq.prefilled < seq.plen:
                    continue
                need = -(-(seq.ctx + 1) // bs)
                while seq.blocks < need:
                    if free > 0:
                        free -= 1
                        seq.blocks += 1
                        continue
                    victim = max(
                        running, key=lambda s: (policy.key(s.req, t), s.req.arrival, s.admitted)
                    )
                    evict(victim, t)
                    if victim is seq:
                        break
            decoding = [s for s in running if s.prefilled >= s.plen]
            budget = self.max_num_batched_tokens - len(decoding)
            # 2. Prefill chunks of running sequences, then 3. admissions (head of line).
            chunks: list[tuple[_Seq, int]] = []
            for seq in running:
                if seq.prefilled < seq.plen and budget > 0:
                    c = min(seq.plen - seq.prefilled, budget)
                    chunks.append((seq, c))
                    budget -= c
            while queue and len(running) < self.max_num_seqs and budget > 0:
                req = queue.peek(t)
                assert req is not None
                i = ctx.index[id(req)]
                plen = ctx.prompts[i] + req.generated
                need = -(-plen // bs)
                if need > free:
                    break
                queue.pop(t)
                free -= need
                seq = _Seq(i, req, plen, ctx.lengths[i], admissions)
                seq.blocks = need
                admissions += 1
                running.append(seq)
                if ctx.first_scheduled[i] != ctx.first_scheduled[i]:  # NaN: first time
                    ctx.first_scheduled[i] = t
                c = min(plen, budget)
                chunks.append((seq, c))
                budget -= c
            if not decoding and not chunks:
                continue  # everyone was preempted: schedule again at the same time
            # 4. The step.
            prefill_tokens = sum(c for _, c in chunks)
            finishing = sum(1 for s, c in chunks if s.prefilled + c == s.plen)
            context = sum(s.ctx for s in decoding) + sum(s.prefilled for s, _ in chunks)
            t += cost.step_time(prefill_tokens, len(decoding) + len(chunks), context, finishing)
            # 5. Progress and completions.
            ended: list[_Seq] = []
            for s in decoding:
                s.ctx += 1
                s.req.generated += 1
                if s.req.generated == s.length:
                    ended.append(s)
            for s, c in chunks:
                s.prefilled += c
                if s.prefilled == s.plen:
                    s.ctx = s.plen
                    s.req.generated += 1
                    if ctx.first_token[s.i] != ctx.first_token[s.i]:
                        ctx.first_token[s.i] = t
                    if s.req.generated == s.length:
                        ended.append(s)
            for s in ended:
                running.remove(s)
                free += s.blocks
                ctx.finish(s.i, t)
                done += 1
