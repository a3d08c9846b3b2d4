"""Tiny synthetic length data for predictor tests: length grows with a keyword and a model."""

from __future__ import annotations

import numpy as np

LONG_WORDS = ("essay", "story", "explain", "detailed", "report")
SHORT_WORDS = ("yes", "name", "number", "word", "short")


def synthetic(
    n_prompts: int = 60, models: tuple[str, ...] = ("m-short", "m-long"), seed: int = 0
) -> tuple[list[str], list[float], list[str]]:
    """Prompts whose answers are long when they ask for essays, short for one-word facts."""
    rng = np.random.default_rng(seed)
    prompts, lengths, names = [], [], []
    for i in range(n_prompts):
        long_ = i % 2 == 0
        word = (LONG_WORDS if long_ else SHORT_WORDS)[i % 5]
        filler = " ".join(rng.choice(["the", "a", "cat", "city", "data", "rain"], size=4))
        prompt = f"please {word} about {filler} {i}"
        base = 400.0 if long_ else 20.0
        for j, m in enumerate(models):
            scale = 1.0 + j  # the second model writes twice as much
            prompts.append(prompt)
            lengths.append(float(max(1, round(base * scale * rng.lognormal(0, 0.2)))))
            names.append(m)
    return prompts, lengths, names
