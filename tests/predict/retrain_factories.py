"""Tiny streams for retraining tests: base data and traffic that disagree about lengths."""

from __future__ import annotations

import numpy as np

from ssjf.predict.records import LengthData
from ssjf.retrain import Completion

FILLER = ("the", "a", "cat", "city", "data", "rain", "stone", "river")
MODELS = ("m-short", "m-long")


def _prompt(rng: np.random.Generator, head: str, words: int, i: int) -> str:
    return f"{head} {' '.join(rng.choice(FILLER, size=words))} {i}"


def base_data(n: int = 80, seed: int = 0) -> LengthData:
    """Short prompts asking for essays get long answers; long quoted texts get one word."""
    rng = np.random.default_rng(seed)
    data = LengthData()
    for i in range(n):
        long_ = i % 2 == 0
        prompt = _prompt(rng, "essay on" if long_ else "name the word in", 2 if long_ else 40, i)
        for j, model in enumerate(MODELS):
            length = (400 if long_ else 20) * (1 + j) * rng.lognormal(0, 0.2)
            data.append(prompt, max(1, round(length)), model, f"base:{i}", "base")
    return data


def traffic(n: int, seed: int = 1, start: int = 0, flip: bool = False) -> list[Completion]:
    """Served requests in the opposite regime: long prompts get long answers (``flip``: not)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        long_ = bool(rng.random() < 0.5)
        prompt = _prompt(rng, "chronicle" if long_ else "tldr", 40 if long_ else 2, i)
        if flip:
            long_ = not long_
        j = i % 2
        length = (300 if long_ else 15) * (1 + j) * rng.lognormal(0, 0.2)
        out.append(Completion(f"traffic {prompt}", MODELS[j], max(1, round(length)), False))
    return out
