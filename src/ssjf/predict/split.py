"""Train/test splits by prompt id: the same prompt answered by 40 models must not leak."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np

from ssjf.predict.data import LengthData

#: The benchmark's fixed split seed (documented in docs/predictors.md).
DEFAULT_SEED = 20240501


def pick_ids(prompt_ids: Iterable[str], k: int, seed: int) -> set[str]:
    """``k`` distinct ids: the first ``k`` of a seeded permutation of the sorted distinct ids.

    The one way ssjf picks prompts for a side of a split; independent of record order.
    """
    ids = sorted(set(prompt_ids))
    if not 0 <= k <= len(ids):
        raise ValueError(f"asked for {k} of {len(ids)} distinct prompt ids")
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i] for i in order[:k]}


def held_out_ids(prompt_ids: list[str], test_frac: float, seed: int = DEFAULT_SEED) -> set[str]:
    """A fixed random ``test_frac`` of the distinct ids, rounded up (:func:`pick_ids`)."""
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    return pick_ids(prompt_ids, math.ceil(test_frac * len(set(prompt_ids))), seed)


def split_by_prompt(
    data: LengthData, test_frac: float = 0.25, seed: int = DEFAULT_SEED
) -> tuple[LengthData, LengthData]:
    """``(train, test)``: every record of a prompt id lands on the same side."""
    test_ids = held_out_ids(data.prompt_ids, test_frac, seed)
    train = [i for i, p in enumerate(data.prompt_ids) if p not in test_ids]
    test = [i for i, p in enumerate(data.prompt_ids) if p in test_ids]
    return data.subset(train), data.subset(test)


_NON_WORD = re.compile(r"\W+")
#: ZeroEval's fixed wrapper: "## Question: <question> ## Instruction <reply format>".
_ZEROEVAL = re.compile(r"\A\s*## Question:\s*(.*?)\s*## Instruction\b", re.S)


def question_text(text: str) -> str:
    """The question inside a known fixed benchmark template, else ``text``: zeroeval's
    1,319 gsm questions are routellm_gsm8k's, and 11 are flask prompts, each under
    another wrapper."""
    m = _ZEROEVAL.match(text)
    if m:
        return m.group(1)
    # RouteLLM's few-shot prompt: "Question: ...\nAnswer: ...\n\n" x 8, "Question: <q>\nAnswer:".
    body = text.strip()
    last = body.rfind("\nQuestion: ")
    if last > 0 and body.startswith("Question: ") and body.endswith("Answer:"):
        return body[last + len("\nQuestion: ") : -len("Answer:")].strip()
    return text


def prompt_key(text: str) -> str:
    """A prompt's identity across datasets: the question of a known template
    (:func:`question_text`), lower case, runs of non-word characters as one space.
    FLASK carries 268 AlpacaEval instructions verbatim and ~160 more that differ
    only in spacing or punctuation."""
    return _NON_WORD.sub(" ", question_text(text).lower()).strip()


def drop_prompts(data: LengthData, prompts: Iterable[str]) -> tuple[LengthData, int]:
    """``data`` without the records whose prompt is one of ``prompts`` (by
    :func:`prompt_key`), and how many were dropped: a held-out prompt must not be
    trained on through another dataset that carries it under another id."""
    keys = {prompt_key(p) for p in set(prompts)}
    hit = {p: prompt_key(p) in keys for p in set(data.prompts)}  # one key per distinct text
    keep = [i for i, p in enumerate(data.prompts) if not hit[p]]
    return data.subset(keep), len(data) - len(keep)
