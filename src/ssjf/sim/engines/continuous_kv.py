"""KV-block bookkeeping of the event-skipping continuous engine, O(1) per skipped run.

A global step counter ``S`` counts engine steps. A decoding sequence gains one
token of context per step, so instead of updating it every step it stores an
offset: its context is ``base + S``. Then

* the total context of the decoders is ``sum_base + n * S``;
* the KV blocks they hold, ``sum(ceil((base_i + S) / bs))``, are
  ``sum_q + n * (S // bs) + #{i: r_i >= bs - S % bs}`` with
  ``base_i + bs - 1 = q_i * bs + r_i``: a count of decoders per residue ``r``
  gives it in O(bs), whatever the number of decoders.

Sequences still prefilling hold an explicit number of blocks (their whole
prefill is reserved at admission), summed in ``prefill_blocks``.
"""

from __future__ import annotations

from ssjf.request import Request


class Seq:
    """A running sequence of the continuous engine (a new one per admission)."""

    __slots__ = ("admitted", "base", "blocks", "gbase", "i", "length", "plen", "prefilled",
                 "q", "r", "req")  # fmt: skip

    def __init__(self, i: int, req: Request, plen: int, length: int, admitted: int) -> None:
        self.i = i  # position in the run's request list
        self.req = req
        self.plen = plen  # tokens to prefill: prompt + tokens generated before a preemption
        self.length = length  # true output length
        self.admitted = admitted  # admission counter: running order and last tie-break
        self.prefilled = 0
        self.blocks = 0  # blocks held while prefilling (decoders' blocks are implicit)
        self.base = 0  # context = base + S while decoding
        self.gbase = 0  # generated = gbase + S while decoding
        self.q = 0
        self.r = -1  # residue class of base + bs - 1; -1 = not decoding


class KVBlocks:
    """Blocks held by running sequences: implicit for decoders, explicit while prefilling."""

    __slots__ = ("block_size", "by_residue", "decoders", "prefill_blocks", "sum_base", "sum_q")

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.by_residue = [0] * block_size  # decoders per residue r
        self.decoders = 0
        self.sum_base = 0
        self.sum_q = 0
        self.prefill_blocks = 0

    def start_decoding(self, s: Seq, step: int) -> None:
        """``s`` finished its prefill at ``step``: its context is ``s.plen`` now."""
        base = s.plen - step
        s.base = base
        s.q, s.r = divmod(base + self.block_size - 1, self.block_size)
        self.decoders += 1
        self.sum_base += base
        self.sum_q += s.q
        self.by_residue[s.r] += 1

    def stop_decoding(self, s: Seq) -> None:
        """``s`` completed or was preempted while decoding."""
        self.decoders -= 1
        self.sum_base -= s.base
        self.sum_q -= s.q
        self.by_residue[s.r] -= 1
        s.r = -1

    def decoder_blocks(self, step: int) -> int:
        """Blocks the decoders hold when their context is ``base + step``."""
        q, r = divmod(step, self.block_size)
        return self.sum_q + self.decoders * q + sum(self.by_residue[self.block_size - r :])

    def demand(self, step: int) -> int:
        """Blocks held by everyone when the decoders' context is ``base + step``."""
        q, r = divmod(step, self.block_size)
        return (
            self.sum_q
            + self.decoders * q
            + sum(self.by_residue[self.block_size - r :])
            + self.prefill_blocks
        )

    def fitting_steps(self, step: int, k: int, total: int) -> int:
        """How many of ``k`` decode steps from ``step`` on fit a cache of ``total`` blocks.

        Decode step ``j`` (1-based) needs ``demand(step + j)`` blocks, and the
        first one fits. Returns ``k`` if all fit, else the number of steps before
        the first that does not: the engine stops at that boundary and
        allocates one sequence at a time there.
        """
        limit = total - self.prefill_blocks
        if self.decoder_blocks(step + k) <= limit:
            return k
        lo, hi = 0, k - 1  # decoder_blocks(step+lo+1) <= limit < decoder_blocks(step+hi+1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.decoder_blocks(step + mid + 1) > limit:
                hi = mid
            else:
                lo = mid
        return hi
