"""Explicit length cues: requested sizes, short/long requests, counts; and the tfidf-embed option."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.predict.cues import CUE_NAMES, prompt_cues


def cue(prompt: str, name: str) -> float:
    return float(prompt_cues([prompt])[0, CUE_NAMES.index(name)])


@pytest.mark.parametrize(
    ("prompt", "name", "count"),
    [
        ("Write a 500-word essay about cats.", "req_words", 500),
        ("Summarise this in 100 words or less.", "req_words", 100),
        ("Describe Paris in two paragraphs.", "req_paragraphs", 2),
        ("Answer in 3-5 sentences.", "req_sentences", 5),
        ("Give me three tips for better sleep.", "req_items", 3),
        ("List 10 bullet points about rain.", "req_items", 10),
        ("Write 1,000 words on tea.", "req_words", 1000),
    ],
)
def test_requested_counts(prompt: str, name: str, count: int) -> None:
    assert cue(prompt, name) == pytest.approx(np.log1p(count))
    others = [n for n in CUE_NAMES[:4] if n != name]
    assert all(cue(prompt, n) == 0.0 for n in others)


def test_flags_and_counts() -> None:
    assert cue("Answer yes or no: is 3 > 2?", "short") > 0
    assert cue("Answer yes or no: is 3 > 2?", "long") == 0
    assert cue("Write a detailed essay, step by step.", "long") >= np.log1p(3)
    assert cue("```python\ndef f(x):\n    return x\n```", "code") > 0
    assert cue("Why? How? When?", "questions") == pytest.approx(np.log1p(3))
    assert cue("Pick one:\nA) red\nB) blue\nC) green", "options") == pytest.approx(np.log1p(3))
    assert cue("Steps:\n1. a\n2. b\n- c", "numbered_lines") == pytest.approx(np.log1p(3))
    assert cue("the year 1999 and 42", "max_number") == pytest.approx(np.log1p(1999))
    assert np.all(prompt_cues(["hello there"]) == 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=5))
def test_any_text_gives_finite_nonnegative_rows(prompts: list[str]) -> None:
    out = prompt_cues(prompts)
    assert out.shape == (len(prompts), len(CUE_NAMES))
    assert np.all(np.isfinite(out)) and np.all(out >= 0.0)
