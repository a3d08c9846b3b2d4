"""The generalization splits of `ssjf bench predictor --splits` on tiny synthetic collections."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.policies_workloads import in_families
from ssjf.bench.predictor_splits import (
    CROSS_TARGETS,
    HELD_OUT_FAMILIES,
    RECIPES,
    SIBLINGS,
    SPLITS,
    build_trainings,
    needed_collections,
    parse_splits,
)
from ssjf.predict.records import LengthData
from ssjf.predict.split import prompt_key, question_text

#: Generators per collection, as the shared data names them (held-out families included).
GENERATORS: dict[str, tuple[str, ...]] = {
    "alpaca_eval": ("gpt4_1106_preview", "claude-2.1", "llama-2-70b", "gpt-4o-2024-05-13"),
    "flask": ("gpt4", "claude_v1", "vicuna_13b"),
    "sharegpt": ("chatgpt",),
    "zeroeval": ("chatgpt-4o-latest-24-09-07", "claude-3-haiku-20240307", "Qwen2-72B"),
    "gpteacher": ("gpt-4",),
    "alpaca5k": ("text-davinci-003",),
    "codealpaca2k": ("text-davinci-003",),
    "routellm_gsm8k": ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
}
ZEROEVAL_WRAP = "\n## Question: \n\n{q}\n\n\n## Instruction \n\nReason, then answer in json.\n"
FEW_SHOT = "Question: What is 1+1?\nAnswer: 2\n#### 2\n\nQuestion: {q}\nAnswer:"


def _text(name: str, i: int) -> str:
    """Prompt text; some prompts are shared across collections under other ids/templates."""
    if name == "flask" and i < 3:
        return f"Shared alpaca prompt number {i}!"  # FLASK repeats AlpacaEval prompts
    if name == "alpaca_eval" and i < 3:
        return f"shared alpaca prompt number {i}"
    if name == "zeroeval":
        q = f"gsm question {i}" if i % 2 else f"flask question {i}"
        return ZEROEVAL_WRAP.format(q=q)
    if name == "flask" and i >= 10:
        return f"flask question {i - 10}"  # the same questions as zeroeval's even ids
    if name == "routellm_gsm8k":
        return FEW_SHOT.format(q=f"gsm question {i}")
    return f"{name} prompt {i}"


def collections(n_prompts: int = 16) -> dict[str, LengthData]:
    out = {}
    for name, gens in GENERATORS.items():
        data = LengthData()
        for i in range(n_prompts):
            task = f"{name}/{'a' if i % 3 else 'b'}" if name in ("zeroeval", "gpteacher") else name
            for j, g in enumerate(gens):
                data.append(_text(name, i), 10 + i + 7 * j, g, f"{name}:{i}", task)
        out[name] = data
    return out


def _sources(data: LengthData) -> set[str]:
    return {d.split("/")[0] for d in data.datasets}


@settings(max_examples=15, deadline=None)
@given(
    split=st.sampled_from(SPLITS),
    recipe=st.sampled_from(RECIPES),
    seed=st.integers(0, 10_000),
    frac=st.sampled_from([0.25, 0.5]),
)
def test_split_invariants(split: str, recipe: str, seed: int, frac: float) -> None:
    data = collections()
    for tr in build_trainings(split, recipe, data, test_frac=frac, seed=seed):
        train_keys = {prompt_key(p) for p in tr.train.prompts}
        for name, te in tr.tests.items():
            assert len(te) > 0
            assert not train_keys & {prompt_key(p) for p in te.prompts}, name
            # the pool holds every generator of the test prompts (the reference reads it)
            assert set(te.prompt_ids) == set(tr.pools[name].prompt_ids)
            assert set(tr.pools[name].model_names) >= set(te.model_names)
        if split == "unseen-models":
            assert not [m for m in tr.train.models if in_families(m, HELD_OUT_FAMILIES)]
            for te in tr.tests.values():
                assert all(in_families(m, HELD_OUT_FAMILIES) for m in te.models)
            assert tr.describe["dropped_by_family"] > 0
            assert set(tr.tests) == {"alpaca_eval", "flask", "zeroeval"}
        if split == "cross-collection":
            assert tr.target in CROSS_TARGETS
            banned = {tr.target, *SIBLINGS.get(tr.target or "", ())}
            assert not _sources(tr.train) & banned
            assert len(tr.tests[tr.target or ""]) == len(data[tr.target or ""])  # tested whole
        if split in ("in-dist", "unseen-models"):  # a held-out prompt id never trains
            test_ids = {p for te in tr.tests.values() for p in te.prompt_ids}
            assert not test_ids & set(tr.train.prompt_ids)
        assert tr.describe["train_records"] == len(tr.train)


def test_cross_collection_trains_once_per_target_and_legacy_recipes() -> None:
    data = collections()
    cross = build_trainings("cross-collection", "legacy", data)
    assert [t.target for t in cross] == list(CROSS_TARGETS)
    for tr in cross:
        assert _sources(tr.train) == {"alpaca_eval", "flask"}
    diverse = {
        t.target: _sources(t.train) for t in build_trainings("cross-collection", "diverse", data)
    }
    assert "routellm_gsm8k" not in diverse["zeroeval"] and "zeroeval" not in diverse["zeroeval"]
    assert {"routellm_gsm8k", "zeroeval", "alpaca5k"} <= diverse["sharegpt"]
    (legacy,) = build_trainings("in-dist", "legacy", data)
    assert _sources(legacy.train) == {"alpaca_eval", "flask", "sharegpt"}
    (unseen,) = build_trainings("unseen-models", "legacy", data)
    assert _sources(unseen.train) == {"alpaca_eval", "flask", "sharegpt"}
    (unseen_d,) = build_trainings("unseen-models", "diverse", data)
    # gpteacher is all gpt-4: nothing of it is left to train on
    assert "gpteacher" not in _sources(unseen_d.train) and "zeroeval" in _sources(unseen_d.train)


def test_leakage_by_text_sees_through_templates_and_is_counted() -> None:
    data = collections()
    (tr,) = build_trainings("in-dist", "diverse", data, test_frac=0.5, seed=3)
    held = {prompt_key(p) for p in tr.tests["flask"].prompts}
    # zeroeval wraps some flask questions in its template: they are dropped from training
    wrapped = [p for p in data["zeroeval"].prompts if prompt_key(p) in held]
    assert wrapped and not [p for p in tr.train.prompts if p in set(wrapped)]
    assert tr.describe["dropped_by_text"] > 0
    q = question_text(FEW_SHOT.format(q="How many eggs?"))
    assert q == "How many eggs?" == question_text(ZEROEVAL_WRAP.format(q="How many eggs?"))
    assert question_text("Question: alone\nAnswer:") == "Question: alone\nAnswer:"


def test_parse_splits_and_errors() -> None:
    assert parse_splits("all") == SPLITS
    assert parse_splits("cross-collection, in-dist") == ("cross-collection", "in-dist")
    with pytest.raises(ValueError, match="unknown split 'cross'"):
        parse_splits("in-dist,cross")
    with pytest.raises(ValueError, match="unknown recipe 'big'"):
        build_trainings("in-dist", "big", collections())
    with pytest.raises(ValueError, match="needs the collections sharegpt"):
        data = collections()
        del data["sharegpt"]
        build_trainings("in-dist", "legacy", data)
    assert needed_collections(("in-dist",), "legacy") == ["alpaca_eval", "flask", "sharegpt"]
