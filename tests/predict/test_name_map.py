"""Unseen models get a per-model map predicted from their names; collection balancing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssjf.predict import PredictorError, load_predictor, make_predictor
from ssjf.predict.conditioning import ModelCalibration, balance_weights
from ssjf.predict.name_map import NameMap
from tests.predict.factories import synthetic

#: Seen models: the "-reasoning" ones answer 3x longer than the "-chat" ones.
SEEN = (
    "alpha-chat",
    "beta-chat",
    "gamma-chat",
    "alpha-reasoning",
    "beta-reasoning",
    "delta-reasoning",
)


def reasoning_data(seed: int = 0) -> tuple[list[str], list[float], list[str]]:
    prompts, _, models = synthetic(40, models=SEEN, seed=seed)
    # synthetic() scales by model position; replace by the name's kind only
    rng = np.random.default_rng(seed)
    out = []
    for p, m in zip(prompts, models, strict=True):
        base = (
            400.0
            if any(w in p for w in ("essay", "story", "explain", "detailed", "report"))
            else 20.0
        )
        scale = 3.0 if m.endswith("-reasoning") else 1.0
        out.append(float(max(1, round(base * scale * rng.lognormal(0, 0.2)))))
    return prompts, out, models


def fitted(name_alpha: float | None):
    prompts, lengths, models = reasoning_data()
    return make_predictor("tfidf", name_alpha=name_alpha, residual_alpha=None).fit(
        prompts, lengths, models
    )


def test_unseen_reasoning_model_is_predicted_longer() -> None:
    pred = fitted(1.0)
    train_prompts = reasoning_data()[0]
    prompts = [train_prompts[0], train_prompts[len(SEEN)]]  # one long, one short kind
    long_ = pred.predict_points(prompts, ["foo-reasoning"] * 2)
    short = pred.predict_points(prompts, ["foo-chat"] * 2)
    assert np.all(long_ > 1.8 * short)
    # Without the name map both fall back to the same global map.
    plain = fitted(None)
    assert np.allclose(
        plain.predict_points(prompts, ["foo-reasoning"] * 2),
        plain.predict_points(prompts, ["foo-chat"] * 2),
    )


def test_seen_models_keep_their_own_map() -> None:
    with_names, without = fitted(1.0), fitted(None)
    prompts = ["please story about rain 3"] * len(SEEN)
    assert np.allclose(
        with_names.predict_points(prompts, list(SEEN)), without.predict_points(prompts, list(SEEN))
    )


def test_unknown_name_gets_the_global_map() -> None:
    pred = fitted(1.0)
    cal = pred.calibration
    assert cal.entry("zzz")[:3] == (*cal.global_ab, cal.global_q)
    assert cal.entry(None)[:3] == (*cal.global_ab, cal.global_q)


def test_quantiles_stay_sorted_for_unseen_models() -> None:
    pred = fitted(0.1)
    est = pred.predict(["please essay about a cat 4"], ["new-reasoning-70b"])[0]
    values = [v for _, v in est.quantiles]
    assert values == sorted(values)


def test_save_load_round_trip(tmp_path: Path) -> None:
    pred = fitted(1.0)
    pred.save(tmp_path / "p")
    back = load_predictor(tmp_path / "p")
    prompts = ["please essay about the city data 1"] * 3
    models = ["foo-reasoning", "foo-chat", "alpha-chat"]
    assert np.allclose(back.predict_points(prompts, models), pred.predict_points(prompts, models))


def test_old_save_without_name_map_still_loads(tmp_path: Path) -> None:
    pred = fitted(1.0)
    pred.save(tmp_path / "p")
    cal = json.loads((tmp_path / "p" / "calibration.json").read_text())
    del cal["name_map"]
    (tmp_path / "p" / "calibration.json").write_text(json.dumps(cal))
    back = load_predictor(tmp_path / "p")
    assert back.calibration.name_map is None
    prompts = ["please essay about a cat 4"] * 2
    got = back.predict_points(prompts, ["foo-reasoning", "foo-chat"])
    assert got[0] == pytest.approx(got[1])


def test_name_map_without_shared_features_changes_nothing() -> None:
    nm = NameMap(alpha=1.0).fit(["a-chat", "b-chat"], np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert nm.predict("c-reasoning") == pytest.approx(np.zeros(2))


def test_bad_name_alpha_and_balance_are_refused() -> None:
    with pytest.raises(PredictorError, match="name_alpha"):
        make_predictor("tfidf", name_alpha=0)
    with pytest.raises(PredictorError, match="balance"):
        make_predictor("tfidf", balance=2)
    with pytest.raises(ValueError, match="name_alpha"):
        NameMap(alpha=-1.0).fit(["a"], np.zeros((1, 2)))


def test_calibration_json_round_trip() -> None:
    rng = np.random.default_rng(0)
    score = rng.normal(size=200)
    models = ["a-chat", "b-reasoning"] * 100
    y = 3 + score + np.where(np.array(models) == "b-reasoning", 1.0, 0.0)
    cal = ModelCalibration().fit(y, score, models, use_models=True, name_alpha=1.0)
    back = ModelCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    a, b, q, lme = cal.entry("c-reasoning")
    assert back.entry("c-reasoning") == (pytest.approx(a), pytest.approx(b), q, pytest.approx(lme))
    assert a > cal.entry("c-chat")[0]


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_balance_changes_nothing_with_one_collection(power: float) -> None:
    w = np.random.default_rng(1).uniform(0.1, 3.0, size=50)
    out = balance_weights(w, np.array(["alpaca_eval"] * 50, dtype=object), power)
    assert np.allclose(out / out.mean(), w / w.mean())


def test_balance_equalises_collection_totals() -> None:
    w = np.ones(40)
    groups = np.array(["big"] * 30 + ["small"] * 10, dtype=object)
    out = balance_weights(w, groups, 1.0)
    assert out[:30].sum() == pytest.approx(out[30:].sum())
    half = balance_weights(w, groups, 0.5)
    assert out[30:].sum() > half[30:].sum() > w[30:].sum()


def test_balanced_fit_with_one_collection_equals_plain_fit() -> None:
    prompts, lengths, models = synthetic(30)
    plain = make_predictor("tfidf", residual_alpha=None).fit(prompts, lengths, models)
    bal = make_predictor("tfidf", residual_alpha=None, balance=1.0).fit(
        prompts, lengths, models, datasets=["alpaca_eval/x"] * len(prompts)
    )
    assert np.allclose(plain.scores(prompts), bal.scores(prompts))
    with pytest.raises(PredictorError, match="dataset names"):
        bal.fit(prompts, lengths, models, datasets=["a"])


def test_prediction_never_leaves_the_seen_range() -> None:
    # Deviation grows with size among 7B-70B models; a 4,000B name must not extrapolate.
    names = ["x-7b", "x-13b", "x-70b", "y-chat"]
    dev = np.array([[0.1, 0.0], [0.2, 0.0], [0.5, 0.0], [0.3, 0.0]])
    nm = NameMap(alpha=0.01).fit(names, dev)
    assert nm.predict("z-4000b")[0] <= 0.5 + 1e-12
    assert nm.predict("z-0.01b")[0] >= 0.0 - 1e-12
    assert nm.predict("nothing") == pytest.approx(np.zeros(2))
    back = NameMap.from_json(json.loads(json.dumps(nm.to_json())))
    assert back.predict("z-4000b") == pytest.approx(nm.predict("z-4000b"))


def test_weightless_models_neither_pull_nor_widen() -> None:
    # A model with weight 0 (its prompts span no score range) has a wild slope: ignored.
    names = ["a-chat", "b-chat", "c-instruct", "d-instruct"]
    dev = np.array([[0.2, 0.1], [0.2, 0.1], [0.0, 0.0], [0.0, 9.0]])
    nm = NameMap(alpha=0.1).fit(names, dev, np.array([1.0, 1.0, 1.0, 0.0]))
    assert abs(nm.predict("e-instruct")[1]) < 0.2
    assert nm.predict("e-chat")[0] > 0.1
    with pytest.raises(ValueError, match="weight"):
        NameMap().fit(names, dev, np.array([1.0, -1.0, 1.0, 1.0]))


def test_dropped_unseen_ngrams_leave_the_score_alone() -> None:
    prompts, lengths, models = synthetic(30)
    kw = {"residual_alpha": None, "length_features": False}
    drop = make_predictor("tfidf", unseen_ngrams="drop", **kw).fit(prompts, lengths, models)
    keep = make_predictor("tfidf", unseen_ngrams="keep", **kw).fit(prompts, lengths, models)
    base = "please essay about the city data"
    noisy = base + " zzqx wvvb kkjq plmo"  # words no training prompt had
    assert drop.scores([noisy])[0] == pytest.approx(drop.scores([base])[0])
    assert keep.scores([noisy])[0] != pytest.approx(keep.scores([base])[0])
    with pytest.raises(PredictorError, match="unseen_ngrams"):
        make_predictor("tfidf", unseen_ngrams="maybe")
