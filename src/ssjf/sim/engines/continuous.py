"""Continuous (iteration-level) batching that skips from event to event.

Same rules as :class:`StepContinuousEngine` (see :class:`ContinuousParams`), but
between events — an arrival that could be admitted, a completion, the KV cache
running out, a prefill — every step is the same pure decode step of the same
sequences, so ``k`` of them are advanced at once with the cost model's closed
form. Decisions still happen only at step boundaries, exactly as in the
reference.

Bookkeeping that makes a skip O(1) instead of O(running):

* a global step counter ``S``; a decoding sequence stores offsets so that its
  context is ``base + S`` and its generated count ``gbase + S``, and a heap holds
  it keyed by the absolute step at which it finishes;
* the total context of decoding sequences is ``sum_base + n_dec * S``;
* the KV blocks they hold, ``sum(ceil((base_i + S) / bs))``, are
  ``sum_q + n_dec * (S // bs) + #{i: r_i >= bs - S % bs}`` with
  ``base_i + bs - 1 = q_i * bs + r_i``: a count per residue ``r`` gives it in O(bs).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ssjf.request import Request
from ssjf.sim.engines.base import TIME_TOL, Engine, RunContext
from ssjf.sim.engines.continuous_config import ContinuousParams


class _Seq:
    __slots__ = ("admitted", "base", "blocks", "gbase", "i", "length", "plen", "prefilled",
                 "q", "r", "req")  # fmt: skip

    def __init__(self, i: int, req: Request, plen: int, length: int, admitted: int) -> None:
        self.i = i
        self.req = req
        self.plen = plen
        self.length = length
        self.admitted = admitted
        self.prefilled = 0
        self.blocks = 0  # blocks held while prefilling (decoders' blocks are implicit)
        self.base = 0  # context = base + S while decoding
        self.gbase = 0  # generated = gbase + S while decoding
        self.q = 0
        self.r = -1  # residue class; -1 = not decoding


@dataclass(frozen=True, slots=True)
class ContinuousEngine(ContinuousParams, Engine):
    """vLLM-like continuous batching (rules in :class:`ContinuousParams`), event to event."""

    @property
    def spec(self) -> str:
        return self._spec("continuous")

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        self.check_fits(prompts, lengths)

    def run(self, ctx: RunContext) -> None:
        """Serve every request, skipping runs of identical decode steps."""
        reqs, order, queue, policy, cost = ctx.reqs, ctx.order, ctx.queue, ctx.policy, ctx.cost
        prompts, lengths, index = ctx.prompts, ctx.lengths, ctx.index
        first_scheduled, first_token, completion = (
            ctx.first_scheduled, ctx.first_token, ctx.completion)  # fmt: skip
        bs, total = self.block_size, self.num_kv_blocks
        max_seqs, max_tokens = self.max_num_seqs, self.max_num_batched_tokens
        step_time, run_time = cost.step_time, cost.decode_run_time
        steps_to_reach = cost.decode_steps_to_reach
        key = policy.key
        # Between arrivals, a static order with no guard cannot bring a fitting request
        # to the head; otherwise the head may change with time: step one by one then.
        head_may_change = policy.time_dependent or queue.guard is not None
        heappush, heappop = heapq.heappush, heapq.heappop
        qadd, qpeek, qpop = queue.add, queue.peek, queue.pop
        arrivals = [reqs[i].arrival for i in order]
        n = len(order)

        running: dict[int, _Seq] = {}  # admission order, as the reference's list
        prefilling: list[_Seq] = []
        heap: list[tuple[int, int, _Seq]] = []  # (finish step, admitted, seq) of decoders
        cnt = [0] * bs
        n_dec = sum_base = sum_q = 0
        u_pre = 0  # blocks held by prefilling sequences
        S = 0
        t = 0.0
        ai = done = admissions = 0

        def u_dec(step: int) -> int:
            qq, rr = divmod(step, bs)
            return sum_q + n_dec * qq + sum(cnt[bs - rr :])

        def drop_decoder(s: _Seq) -> None:
            nonlocal n_dec, sum_base, sum_q
            n_dec -= 1
            sum_base -= s.base
            sum_q -= s.q
            cnt[s.r] -= 1
            s.r = -1

        def evict(s: _Seq, now: float) -> None:
            nonlocal u_pre
            del running[s.admitted]
            if s.r >= 0:
                s.req.generated = s.gbase + S
                drop_decoder(s)
            else:
                prefilling.remove(s)
                u_pre -= s.blocks
            s.req.preemptions += 1
            qadd(s.req, now)

        tol = TIME_TOL

        def steps_to_arrival(ta: float, context: int) -> int:
            # Fewest steps after which the boundary reaches ta (with the tolerance).
            k = steps_to_reach(n_dec, context, ta - t - tol * (1.0 + abs(ta)))
            if k < 1:
                k = 1
            while k > 1 and ta <= (b := t + run_time(n_dec, context, k - 1)) + tol * (1.0 + abs(b)):
                k -= 1
            while ta > (b := t + run_time(n_dec, context, k)) + tol * (1.0 + abs(b)):
                k += 1
            return k

        while done < n:
            while ai < n and arrivals[ai] <= t + tol * (1.0 + abs(t)):
                r = reqs[order[ai]]
                qadd(r, r.arrival)
                ai += 1
            if not running and not queue:
                t = arrivals[ai]
                continue
            # 1. Decode tokens: the cache must hold every decoder's context + 1.
            qq, rr = divmod(S + 1, bs)  # u_dec(S + 1), inlined: this runs at every boundary
            demand = sum_q + n_dec * qq + sum(cnt[bs - rr :]) + u_pre
            if demand > total:
                # Memory limit: replay the reference's per-sequence allocation, with
                # explicit block counts for this one boundary.
                held = u_pre
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
                        victim = max(
                            running.values(),
                            key=lambda v: (key(v.req, t), v.req.arrival, v.admitted),
                        )
                        evict(victim, t)
                        free += victim.blocks
                        if victim is s:
                            break
                demand = u_dec(S + 1) + u_pre
            free = total - demand
            budget = max_tokens - n_dec
            # 2. Prefill chunks, then 3. admissions in queue order (head of line).
            chunks: list[tuple[_Seq, int]] = []
            for s in prefilling:
                if budget <= 0:
                    break
                c = s.plen - s.prefilled
                if c > budget:
                    c = budget
                chunks.append((s, c))
                budget -= c
            while budget > 0 and len(running) < max_seqs and queue:
                req = qpeek(t)
                i = index[id(req)]
                plen = prompts[i] + req.generated  # type: ignore[union-attr]
                need = -(-plen // bs)
                if need > free:
                    break
                qpop(t)
                free -= need
                s = _Seq(i, req, plen, lengths[i], admissions)  # type: ignore[arg-type]
                s.blocks = need
                u_pre += need
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
                context = sum_base + n_dec * S
                for s, c in chunks:
                    prefill_tokens += c
                    context += s.prefilled
                    if s.prefilled + c == s.plen:
                        finishing += 1
                t += step_time(prefill_tokens, n_dec + len(chunks), context, finishing)
                S += 1
            elif n_dec:
                # 4b. A run of k identical pure decode steps.
                while True:
                    fin, _, s = heap[0]
                    if s.r >= 0:
                        break
                    heappop(heap)  # stale: the sequence was preempted
                k = fin - S
                context = sum_base + n_dec * S
                if k > 1 and len(running) < max_seqs and budget > 0:
                    if queue and head_may_change:
                        k = 1
                    elif ai < n:
                        ka = steps_to_arrival(arrivals[ai], context)
                        if ka < k:
                            k = ka
                if k > 1 and demand + n_dec * ((k - 2) // bs + 1) > total:
                    # The cache may run out within the run: find the first boundary
                    # S + j whose decode step needs more blocks than there are.
                    limit = total - u_pre
                    if u_dec(S + k) > limit:
                        lo, hi = 0, k - 1  # u_dec(S+lo+1) <= limit < u_dec(S+hi+1)
                        while hi - lo > 1:
                            mid = (lo + hi) // 2
                            if u_dec(S + mid + 1) > limit:
                                hi = mid
                            else:
                                lo = mid
                        k = hi
                t += run_time(n_dec, context, k)
                S += k
            else:
                continue  # everyone was preempted: schedule again at the same time
            # 5. Completions of decoders, then prefills that finished in this step.
            while heap and heap[0][0] <= S:
                fin, _, s = heappop(heap)
                if s.r < 0:
                    continue  # stale entry: preempted (a re-admission is a new _Seq)
                drop_decoder(s)
                del running[s.admitted]
                s.req.generated = s.length
                completion[s.i] = t
                done += 1
            if chunks:
                for s, c in chunks:
                    s.prefilled += c
                    if s.prefilled != s.plen:
                        continue
                    prefilling.remove(s)
                    u_pre -= s.blocks
                    g = s.req.generated + 1
                    s.req.generated = g
                    if first_token[s.i] != first_token[s.i]:
                        first_token[s.i] = t
                    if g == s.length:
                        del running[s.admitted]
                        completion[s.i] = t
                        done += 1
                        continue
                    b = s.plen - S
                    s.base = b
                    s.gbase = g - S
                    s.q, s.r = divmod(b + bs - 1, bs)
                    n_dec += 1
                    sum_base += b
                    sum_q += s.q
                    cnt[s.r] += 1
                    heappush(heap, (S + s.length - g, s.admitted, s))
