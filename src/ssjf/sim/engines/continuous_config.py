"""Parameters of the continuous-batching engines (shared by the fast and reference models)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class ContinuousParams:
    """vLLM-like iteration-level batching limits.

    Rules (the same for every policy; both continuous engines implement them):

    * Each step first gives every running sequence past its prefill one decode
      token. A sequence holds ``ceil(context / block_size)`` KV blocks; when a
      decode token needs a new block and none is free, the running request with
      the WORST policy key (ties: latest arrival, then latest admitted) is
      preempted by recompute — its blocks are freed and it goes back to the
      waiting queue keeping its generated tokens — until the block is found or
      the sequence itself was the one preempted (running order = admission order).
    * The rest of the per-step token budget goes to prefill chunks of running
      sequences still prefilling (admission order), then to admissions: the
      queue's head is admitted while a slot is free, budget is left and its
      whole prefill (prompt + tokens generated before a preemption) fits in the
      free blocks; otherwise nothing behind it is admitted (head of line). A
      waiting request never evicts a running one, except under a preemption
      rule (:mod:`ssjf.sim.preemption`, checked when a new arrival is present).
    * A sequence that completes its prefill in a step emits a token at the end
      of that step (its first token, or the next one after a recompute).
    """

    max_num_seqs: int = 32  # vLLM-style cap on running sequences (the bench's figure)
    max_num_batched_tokens: int = 2048  # vLLM's chunked-prefill token budget per step
    block_size: int = 16  # vLLM's default KV block size (tokens)
    # ~80K tokens of KV cache: what remains of one 80 GB GPU after the weights of a
    # 7B model (~7,000 blocks at 0.5 MB/token) or a 13B model (~3,500 blocks).
    num_kv_blocks: int = 5000
    #: The engine spec's name, for messages that spell a spec (subclasses set theirs).
    _SPEC_KIND: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "block_size", "num_kv_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError(
                "max_num_batched_tokens must be >= max_num_seqs (every running sequence "
                f"needs one token per step); got {self.max_num_batched_tokens} < {self.max_num_seqs}"
            )

    def _spec(self, kind: str) -> str:
        return (
            f"{kind}:{self.max_num_seqs}:tokens={self.max_num_batched_tokens}"
            f":block={self.block_size}:blocks={self.num_kv_blocks}"
        )

    def blocks_needed(self, prompt: int, length: int) -> int:
        """KV blocks a request holds at its last decode step: its whole context but the last token."""
        return -(-(prompt + length - 1) // self.block_size)

    def unfit(self, prompts: list[int], lengths: list[int]) -> list[int]:
        """Indices of the requests that need more KV blocks than the whole cache."""
        cap = self.num_kv_blocks
        return [
            i
            for i, (p, length) in enumerate(zip(prompts, lengths, strict=True))
            if self.blocks_needed(p, length) > cap
        ]

    def fit_fix(self, prompts: list[int], lengths: list[int]) -> str | None:
        """The engine spec (CLI spelling) with just enough blocks for every request, if some lack them."""
        need = max(map(self.blocks_needed, prompts, lengths), default=0)
        if need <= self.num_kv_blocks:
            return None
        return replace(self, num_kv_blocks=need)._spec(self._SPEC_KIND)

    def check_fits(self, prompts: list[int], lengths: list[int]) -> None:
        """Every request must fit the KV cache on its own, or it could never finish."""
        bad = self.unfit(prompts, lengths)
        if bad:
            i = bad[0]
            p, length = prompts[i], lengths[i]
            raise ValueError(
                f"request #{i}: {p} prompt + {length} output tokens need "
                f"{self.blocks_needed(p, length)} KV blocks of {self.block_size} tokens but the "
                f"cache has {self.num_kv_blocks} ({len(bad)} such request(s)); "
                f"use --engine {self.fit_fix(prompts, lengths)}"
            )
