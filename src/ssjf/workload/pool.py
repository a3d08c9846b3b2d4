"""A pool: the records a workload draws requests from, one entry per record (columnar).

A source (:mod:`ssjf.workload.sources`, :mod:`ssjf.workload.table`) loads into a
pool: prompt and output token counts plus what the source also knows
(timestamps, prompt text, prompt ids, its own predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ssjf.estimate import LengthEstimate


@dataclass(slots=True)
class Pool:
    """Requests a workload can draw from, one entry per record (columnar)."""

    name: str
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    #: Arrival times in seconds from the first record (traces only).
    timestamps: np.ndarray | None = None
    prompts: list[str] | None = None
    #: Group ids for splits (the same prompt under several generators shares one).
    prompt_ids: np.ndarray | None = None
    #: The generating model's name per record (None = unknown).
    models: list[str | None] | None = None
    #: The source's own predictions (e.g. the paper's classes), one per record.
    estimates: list[LengthEstimate] | None = None
    #: Further per-record columns (e.g. the paper's predicted classes), kept aligned by ``take``.
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.output_tokens)

    def take(self, idx: np.ndarray) -> Pool:
        """A new pool with records ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        il = idx.tolist()
        return replace(
            self,
            prompt_tokens=self.prompt_tokens[idx],
            output_tokens=self.output_tokens[idx],
            timestamps=None if self.timestamps is None else self.timestamps[idx],
            prompts=None if self.prompts is None else [self.prompts[i] for i in il],
            prompt_ids=None if self.prompt_ids is None else self.prompt_ids[idx],
            models=None if self.models is None else [self.models[i] for i in il],
            estimates=None if self.estimates is None else [self.estimates[i] for i in il],
            columns={k: v[idx] for k, v in self.columns.items()},
            meta=dict(self.meta),
        )
