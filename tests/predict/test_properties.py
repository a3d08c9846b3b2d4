"""Hypothesis invariants: truncation bounds, predictions defined for any text, split disjointness."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.predict import make_predictor
from ssjf.predict.data import LengthData
from ssjf.predict.split import split_by_prompt
from ssjf.predict.truncate import STRATEGIES, truncate_text

from .factories import synthetic


@given(st.text(max_size=300), st.integers(0, 200), st.sampled_from(STRATEGIES))
def test_truncation_never_exceeds_budget(text: str, budget: int, strategy: str) -> None:
    out = truncate_text(text, budget, strategy)
    if budget <= 0 or len(text) <= budget:
        assert out == text
    else:
        assert len(out) <= budget
        if strategy == "head":
            assert text.startswith(out)
        if strategy == "tail":
            assert text.endswith(out)


@pytest.fixture(scope="module")
def tfidf():  # type: ignore[no-untyped-def]
    prompts, lengths, models = synthetic()
    return make_predictor("tfidf").fit(prompts, lengths, models)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(max_size=200), min_size=1, max_size=5), st.sampled_from([None, "m-long", "zz"])
)
def test_any_text_gets_a_valid_estimate(tfidf, prompts: list[str], model: str | None) -> None:  # type: ignore[no-untyped-def]
    ests = tfidf.predict(prompts, [model] * len(prompts))
    assert len(ests) == len(prompts)
    for e in ests:
        assert math.isfinite(e.point) and e.point >= 1
        values = [v for _, v in e.quantiles]
        assert values == sorted(values)


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(1, 500)), min_size=4, max_size=80),
    st.floats(0.1, 0.9),
    st.integers(0, 5),
)
def test_split_keeps_prompt_ids_together(
    rows: list[tuple[int, int]], frac: float, seed: int
) -> None:
    data = LengthData()
    for pid, n in rows:
        data.append(f"prompt {pid}", n, "m", str(pid), "d")
    train, test = split_by_prompt(data, frac, seed)
    assert len(train) + len(test) == len(data)
    assert not set(train.prompt_ids) & set(test.prompt_ids)
    assert len(set(test.prompt_ids)) == math.ceil(frac * len(set(data.prompt_ids)))
