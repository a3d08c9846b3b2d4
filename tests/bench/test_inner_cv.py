"""Inner CV folds stay inside the training portion and group by prompt id; weight_power."""

from __future__ import annotations

import numpy as np
import pytest

from ssjf.bench.inner_cv import inner_folds, parse_config, run, source
from ssjf.predict import make_predictor
from ssjf.predict.data import LengthData
from tests.predict.factories import synthetic


def tiny_data(seed: int = 0) -> LengthData:
    """Synthetic records tagged as alpaca_eval/flask (two models) and sharegpt (one answer)."""
    data = LengthData()
    for name, n, models in (
        ("alpaca_eval/koala", 24, ("m-short", "m-long")),
        ("flask/BBH", 24, ("m-short", "m-long")),
        ("sharegpt", 16, ("m-long",)),
    ):
        prompts, lengths, mods = synthetic(n_prompts=n, models=models, seed=seed)
        for p, y, m in zip(prompts, lengths, mods, strict=True):
            data.append(f"{name} {p}", int(y), m, f"{name.split('/')[0]}:{p}", name)
    return data


def test_folds_group_prompt_ids_and_never_hold_out_sharegpt() -> None:
    data = tiny_data()
    folds = inner_folds(data, 4, seed=1)
    ds = source(data)
    pids = np.array(data.prompt_ids, dtype=object)
    covered = np.zeros(len(data), dtype=int)
    for val in folds:
        covered += val
        assert val.any()
        held = set(pids[val].tolist())
        # every record of a held prompt id is in the fold
        assert np.all(val[np.isin(pids, list(held))])
    assert np.all(covered[ds != "sharegpt"] == 1)
    assert np.all(covered[ds == "sharegpt"] == 0)
    assert [f.tolist() for f in folds] == [f.tolist() for f in inner_folds(data, 4, seed=1)]


def test_run_scores_each_source() -> None:
    res = run("tfidf", {"folds": 2}, tiny_data(), k=2, seed=0)
    for name in ("alpaca_eval", "flask"):
        assert len(res[f"{name}_folds"]) == 2
        assert res[name] > 0.5  # the keyword decides the length in the synthetic data


def test_parse_config() -> None:
    assert parse_config("tfidf-embed") == ("tfidf-embed", {})
    assert parse_config("tfidf-embed:weight_power=6,target=log,alpha=0.5") == (
        "tfidf-embed",
        {"weight_power": 6, "target": "log", "alpha": 0.5},
    )


def test_weight_power_is_inert_with_one_answer_per_prompt() -> None:
    prompts, lengths, models = synthetic(n_prompts=40, models=("m",), seed=2)
    a = make_predictor("tfidf").fit(prompts, lengths, models)
    b = make_predictor("tfidf", weight_power=6.0).fit(prompts, lengths, models)
    q = synthetic(n_prompts=8, seed=9)[0]
    np.testing.assert_allclose(a.predict_points(q), b.predict_points(q))


def test_weight_power_favours_prompts_with_many_answers() -> None:
    # Many-answer prompts follow the keyword; one-answer prompts contradict it.
    prompts, lengths, models = synthetic(n_prompts=30, models=("a", "b", "c", "d"), seed=3)
    flip, flip_y, _ = synthetic(n_prompts=30, models=("a",), seed=4)
    prompts += [p + " again" for p in flip]
    lengths += [8000.0 / y for y in flip_y]  # 400 <-> 20: long and short swapped
    models += ["a"] * len(flip)
    q = ["please essay about rain", "please name the city"]
    gaps = []
    for power in (1.0, 6.0):
        pred = make_predictor("tfidf", weight_power=power).fit(prompts, lengths, models)
        essay, name = pred.scores(q)
        gaps.append(essay - name)
    assert gaps[1] > gaps[0] > 0.0  # sharper weights: the many-answer prompts win more


@pytest.mark.parametrize("power", [1.0, 6.0])
def test_weight_power_round_trips(power: float, tmp_path: object) -> None:
    from pathlib import Path

    from ssjf.predict import load_predictor

    prompts, lengths, models = synthetic(seed=5)
    pred = make_predictor("tfidf", weight_power=power).fit(prompts, lengths, models)
    path = Path(str(tmp_path)) / "p"
    pred.save(path)
    again = load_predictor(path)
    assert again.params["weight_power"] == power
    assert again.predict(prompts[:6], models[:6]) == pred.predict(prompts[:6], models[:6])
