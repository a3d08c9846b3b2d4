"""Continuous (iteration-level) batching with event skipping."""

from __future__ import annotations

from dataclasses import dataclass

from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.continuous_config import ContinuousParams
from ssjf.sim.engines.step_reference import StepContinuousEngine


@dataclass(frozen=True, slots=True)
class ContinuousEngine(ContinuousParams, Engine):
    """vLLM-like continuous batching (rules in :class:`ContinuousParams`), event to event."""

    @property
    def spec(self) -> str:
        return self._spec("continuous")

    def validate(self, prompts: list[int], lengths: list[int]) -> None:
        self.check_fits(prompts, lengths)

    def run(self, ctx: RunContext) -> None:
        """Serve every request (temporary: delegates to the step reference)."""
        StepContinuousEngine(
            self.max_num_seqs, self.max_num_batched_tokens, self.block_size, self.num_kv_blocks
        ).run(ctx)
