"""Per-request simulation results in columnar numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SimResult:
    """One run's per-request records, one entry per request in job order (times in seconds)."""

    policy: str
    engine: str
    arrival: np.ndarray
    first_scheduled: np.ndarray  # first admission into service
    first_token: np.ndarray  # end of the request's (first) prefill step
    completion: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray  # true lengths
    predicted_tokens: np.ndarray  # the estimate's point (NaN when there was none)
    preemptions: np.ndarray
    promotions: int = 0  # starvation-guard promotions
    wall_s: float = 0.0  # wall-clock seconds the simulation took
    extra: dict[str, Any] = field(default_factory=dict)
    #: Cached tokens each request's preemptions threw away (computed again); zeros if not given.
    recomputed_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if len(self.recomputed_tokens) != len(self.arrival):
            if len(self.recomputed_tokens):
                raise ValueError("SimResult.recomputed_tokens needs one entry per request")
            self.recomputed_tokens = np.zeros(len(self.arrival), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.arrival)

    @property
    def jct(self) -> np.ndarray:
        """Job completion time (end-to-end latency): completion - arrival."""
        return self.completion - self.arrival

    @property
    def queueing_delay(self) -> np.ndarray:
        """Wait before first admission: first_scheduled - arrival."""
        return self.first_scheduled - self.arrival

    @property
    def ttft(self) -> np.ndarray:
        """Time to first token: first_token - arrival."""
        return self.first_token - self.arrival

    @property
    def tpot(self) -> np.ndarray:
        """Time per output token after the first (NaN for one-token outputs)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (self.completion - self.first_token) / (self.output_tokens - 1)
        return np.where(self.output_tokens > 1, out, np.nan)

    @property
    def makespan(self) -> float:
        """Seconds from the first arrival to the last completion."""
        if len(self) == 0:
            return 0.0
        return float(self.completion.max() - self.arrival.min())
