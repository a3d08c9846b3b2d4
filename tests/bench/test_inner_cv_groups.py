"""Leave-one-group-out inner CV: folds never cross the groups, test targets are never read."""

from __future__ import annotations

import numpy as np
import pytest

from ssjf.bench.inner_cv_groups import (
    collection_folds,
    family_folds,
    family_of,
    load_training,
    run,
)
from ssjf.predict.records import LengthData
from tests.predict.factories import synthetic


def toy() -> LengthData:
    data = LengthData()
    models = ("llama-2-7b-chat", "llama-2-70b-chat", "vicuna-7b", "vicuna-13b", "gpt4", "claude-2")
    for name in ("alpaca_eval", "flask"):
        prompts, lengths, mods = synthetic(24, models=models, seed=len(name))
        for i, (p, y, m) in enumerate(zip(prompts, lengths, mods, strict=True)):
            data.append(f"{name} {p}", int(y), m, f"{name}:{i // len(models)}", name)
    prompts, lengths, _ = synthetic(20, models=("text-davinci-003",), seed=3)
    for i, (p, y) in enumerate(zip(prompts, lengths, strict=True)):
        data.append(f"synthetic {p}", int(y), "text-davinci-003", f"alpaca5k:{i}", "alpaca5k")
    # the same text in two collections: must never be trained on when one is held out
    data.append("flask please essay about a cat 0", 300, "gpt4", "alpaca5k:99", "alpaca5k")
    return data


def test_test_targets_are_refused() -> None:
    for name in ("sharegpt", "zeroeval", "gpteacher"):
        with pytest.raises(ValueError, match="test target"):
            load_training(("alpaca_eval", name))


def test_collection_folds_hold_out_texts_too() -> None:
    data = toy()
    folds = {name: (tr, te) for name, tr, te in collection_folds(data)}
    assert set(folds) == {"alpaca_eval", "flask", "alpaca5k"}
    for name, (train, test) in folds.items():
        assert {data.datasets[i] for i in test} == {name}
        held = {data.prompts[i] for i in test}
        assert not held & {data.prompts[i] for i in train}
    legacy = collection_folds(data, ["alpaca_eval", "flask"])
    assert all(data.datasets[i] != "alpaca5k" for _, tr, _ in legacy for i in tr)


def test_family_folds_leave_the_family_and_the_held_families_out() -> None:
    data = toy()
    folds = family_folds(data, k=2, seed=0)
    assert [f for f, _, _ in folds] == ["llama", "vicuna"]
    for fam, train, test in folds:
        assert len(test) > 0
        assert {family_of(data.models[i]) for i in test} == {fam}
        train_fams = {family_of(data.models[i]) for i in train}
        assert fam not in train_fams and not train_fams & {"claude", "gpt4"}
        assert not {data.prompts[i] for i in test} & {data.prompts[i] for i in train}
    with pytest.raises(ValueError, match="held-out families"):
        family_folds(data, families=["gpt4"])


def test_run_reports_every_fold_and_name_map_strength() -> None:
    data = toy()
    out = run("tfidf", {"residual_alpha": None}, data, family_folds(data, 2, 0), [None, 3.0])
    assert [r["params"]["name_alpha"] for r in out] == [None, 3.0]
    for r in out:
        assert set(r["folds"]) == {"llama", "vicuna"}
        assert np.isfinite(r["tau_mean"]) and r["mae"] > 0
    # tau_mean reads model scores: the name map does not move it
    assert out[0]["tau_mean"] == pytest.approx(out[1]["tau_mean"])


def test_inner_cv_never_reads_a_test_target_or_its_sibling() -> None:
    from ssjf.bench.inner_cv_groups import FORBIDDEN, TRAIN_COLLECTIONS
    from ssjf.bench.predictor_splits import CROSS_TARGETS, SIBLINGS

    for target in CROSS_TARGETS:
        assert target in FORBIDDEN
        assert all(s in FORBIDDEN for s in SIBLINGS.get(target, ()))
    assert not set(FORBIDDEN) & set(TRAIN_COLLECTIONS)
