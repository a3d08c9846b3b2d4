"""Online retraining: a better candidate is swapped in, a worse or failed one never is."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.estimate import LengthEstimate
from ssjf.predict import make_predictor
from ssjf.predict.baselines import ConstantPredictor, InputLengthPredictor
from ssjf.predict.split import prompt_key
from ssjf.retrain import Completion, Retrainer, RetrainSettings
from ssjf.stats import kendall_tau_b
from tests.predict.retrain_factories import base_data, traffic


def _tau(predictor: Any, stream: list[Completion]) -> float:
    points = predictor.predict_points([c.prompt for c in stream], [c.model for c in stream])
    return kendall_tau_b(points, [c.length for c in stream])


# -- settings ------------------------------------------------------------------------------
def test_settings_parse_either_separator_and_aliases() -> None:
    s = RetrainSettings.parse("every=200:holdout=100:min=300,gain=0.05")
    assert (s.every, s.holdout, s.min_records, s.min_gain) == (200, 100, 300, 0.05)
    assert RetrainSettings.parse("on") == RetrainSettings()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("every=0", "every must be >= 1"),
        ("holdout=1", "holdout must be >= 2"),
        ("min=300:max=100", "max_records"),
        ("max=100", "max_records"),  # below the default holdout of 200
        ("gain=nan", "min_gain"),
        ("gain=-0.1", "min_gain"),
        ("prompt_chars=0", "max_prompt_chars"),
        ("often=3", "expected key=value"),
        ("every=ten", "is no number"),
    ],
)
def test_bad_settings_name_the_setting(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetrainSettings.parse(spec)


# -- schedule ------------------------------------------------------------------------------
def test_due_after_min_records_then_every() -> None:
    serving = make_predictor("constant").fit(["a", "b"], [1, 2])
    r = Retrainer(serving, RetrainSettings(every=5, min_records=10, holdout=4))
    stream = traffic(30)
    assert [r.observe(c) for c in stream[:10]] == [False] * 9 + [True]
    r.retrain()
    assert [r.observe(c) for c in stream[10:15]] == [False] * 4 + [True]
    assert r.completions == 15


# -- swaps ---------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["input-length", "tfidf"])
def test_traffic_unlike_the_base_data_swaps_in_a_better_predictor(family: str) -> None:
    base = base_data()
    serving = make_predictor(family).fit(base.prompts, base.lengths, base.models)
    r = Retrainer(serving, RetrainSettings(min_records=240, holdout=80), base=base)
    for c in traffic(240):
        r.observe(c)
    event = r.retrain()
    assert event.error is None and event.swapped and event.outcome == "swapped"
    assert event.candidate_tau > event.serving_tau + 0.2
    assert event.holdout == 80 and event.trained_on == len(base) + 160
    assert r.version == event.version == 1 and list(r.events) == [event]
    new = r.predictor
    assert new is not serving and type(new) is type(serving) and new.params == serving.params
    assert new.training["retrain"]["version"] == 1
    # Better on traffic neither has seen, not only on the holdout it was chosen on.
    fresh = traffic(120, seed=7, start=10_000)
    assert _tau(new, fresh) > _tau(serving, fresh) + 0.2


def test_a_worse_candidate_is_not_swapped_in() -> None:
    good = traffic(200, seed=3, start=50_000)
    serving = InputLengthPredictor().fit(
        [c.prompt for c in good], [c.length for c in good], [c.model for c in good]
    )
    r = Retrainer(serving, RetrainSettings(min_records=400, holdout=100))
    # Training part: the regime reversed; the holdout (the most recent): the true one.
    for c in [*traffic(300, seed=4, flip=True), *traffic(100, seed=5, start=1000)]:
        r.observe(c)
    event = r.retrain()
    assert event.error is None and not event.swapped and event.outcome == "kept"
    assert event.candidate_tau < event.serving_tau
    assert r.predictor is serving and r.version == 0 and list(r.events) == [event]


class _Failing(InputLengthPredictor):
    """Fits only through the parent class (how the test builds the serving one)."""

    def fit(
        self, prompts: Sequence[str], lengths: Sequence[float], models: Any = None, **kw: Any
    ) -> Any:
        raise RuntimeError("boom")


def test_a_failed_fit_leaves_the_serving_predictor_and_is_an_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = traffic(60)
    serving = _Failing()
    InputLengthPredictor.fit(serving, [c.prompt for c in stream], [c.length for c in stream])
    r = Retrainer(serving, RetrainSettings(every=10, min_records=20, holdout=10))
    for c in stream[:20]:
        r.observe(c)
    with caplog.at_level(logging.WARNING, logger="ssjf.retrain"):
        event = r.retrain()
    assert event.outcome == "failed" and event.error == "RuntimeError: boom"
    assert not event.swapped and math.isnan(event.candidate_tau)
    assert r.predictor is serving and r.version == 0 and list(r.events) == [event]
    assert "boom" in caplog.text
    # It keeps learning: the next retrain is due after `every` more completions.
    assert [r.observe(c) for c in stream[20:30]][-1] is True


def test_tied_holdout_lengths_keep_the_serving_predictor() -> None:
    base = base_data()
    serving = InputLengthPredictor().fit(base.prompts, base.lengths, base.models)
    r = Retrainer(serving, RetrainSettings(min_records=100, holdout=50))
    for c in traffic(100):
        r.observe(Completion(c.prompt, c.model, 64, False))
    event = r.retrain()
    assert not event.swapped and math.isnan(event.candidate_tau) and r.predictor is serving


# -- censoring and the holdout -------------------------------------------------------------
estimates = st.builds(
    lambda point, qs: LengthEstimate(
        point=point, quantiles=tuple(zip((0.1, 0.5, 0.9), sorted(qs), strict=True))
    ),
    st.floats(0, 5000),
    st.lists(st.floats(0, 5000), min_size=3, max_size=3),
) | st.builds(LengthEstimate, st.floats(0, 5000))


@given(limit=st.integers(0, 10_000), est=st.none() | estimates)
def test_a_censored_length_trains_at_least_at_its_limit(
    limit: int, est: LengthEstimate | None
) -> None:
    c = Completion("p", None, limit, True, est)
    if est is None:
        assert c.training_length() == limit
    else:
        assert limit <= c.training_length() < math.inf
    assert Completion("p", None, limit, False, est).training_length() == limit


def test_a_censored_length_trains_at_its_expected_length_beyond_the_limit() -> None:
    assert Completion("p", None, 100, True, LengthEstimate(500.0)).training_length() == 500
    assert Completion("p", None, 100, True, LengthEstimate(50.0)).training_length() == 101
    spread = LengthEstimate(200.0, ((0.1, 50.0), (0.5, 200.0), (0.9, 600.0)))
    assert 300 < Completion("p", None, 300, True, spread).training_length() < 600


class _Recording(ConstantPredictor):
    """Remembers what every instance was fitted on (the candidate is built by the retrainer)."""

    fits: ClassVar[list[tuple[list[str], list[float]]]] = []

    def fit(
        self, prompts: Sequence[str], lengths: Sequence[float], models: Any = None, **kw: Any
    ) -> Any:
        self.fits.append((list(prompts), [float(x) for x in lengths]))
        return super().fit(prompts, lengths, models, **kw)


completion = st.builds(
    Completion,
    prompt=st.sampled_from(["a b", "A  b!", "c", "d e f", "g", "h i"]) | st.text(max_size=12),
    model=st.sampled_from([None, "m1", "m2"]),
    length=st.integers(0, 3000),
    censored=st.booleans(),
    estimate=st.none() | estimates,
)


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(completion, min_size=4, max_size=60),
    holdout=st.integers(2, 30),
    cut=st.integers(1, 8),
)
def test_the_candidate_never_trains_on_the_holdout_and_imputes_censored_lengths(
    stream: list[Completion], holdout: int, cut: int
) -> None:
    serving = _Recording().fit(["x"], [1.0])
    _Recording.fits.clear()
    s = RetrainSettings(min_records=4, holdout=holdout, max_records=40, max_prompt_chars=cut)
    r = Retrainer(serving, s)
    for c in stream:
        r.observe(c)
    event = r.retrain()
    kept = stream[-40:]
    h = min(holdout, len(kept) // 2)
    hold_keys = {prompt_key(_cut(c.prompt, cut)) for c in kept[len(kept) - h :]}
    train = [c for c in kept[: len(kept) - h] if prompt_key(_cut(c.prompt, cut)) not in hold_keys]
    if not train:
        assert event.outcome == "failed" and not _Recording.fits
        return
    [(prompts, lengths)] = _Recording.fits
    assert prompts == [_cut(c.prompt, cut) for c in train]
    assert not {prompt_key(p) for p in prompts} & hold_keys

    def expected(c: Completion) -> float:
        if c.censored and c.estimate is None:  # imputed from the serving predictor
            est = serving.predict([_cut(c.prompt, cut)], [c.model])[0]
            return Completion(c.prompt, c.model, c.length, True, est).training_length()
        return c.training_length()

    assert lengths == [expected(c) for c in train]
    assert all(x >= c.length for x, c in zip(lengths, train, strict=True))
    assert event.holdout == sum(not c.censored for c in kept[len(kept) - h :])


def _cut(text: str, n: int) -> str:
    from ssjf.predict.truncate import truncate_text

    return truncate_text(text, n)


class _Balanced(ConstantPredictor):
    """A family with a collection balance: it is told each record's collection."""

    got: ClassVar[list[Any]] = []

    def __init__(self, stat: str = "median", balance: float = 1.0) -> None:
        super().__init__(stat)
        self.params["balance"] = balance

    def fit(
        self,
        prompts: Sequence[str],
        lengths: Sequence[float],
        models: Any = None,
        *,
        datasets: Sequence[str] | None = None,
    ) -> Any:
        self.got.append(None if datasets is None else list(datasets))
        return super().fit(prompts, lengths, models)


def test_families_that_balance_collections_see_traffic_as_one() -> None:
    base = base_data(4)
    serving = _Balanced()
    ConstantPredictor.fit(serving, base.prompts, base.lengths, base.models)
    r = Retrainer(serving, RetrainSettings(min_records=10, holdout=4), base=base)
    for c in traffic(10):
        r.observe(c)
    r.retrain()
    assert _Balanced.got == [["base"] * 8 + ["traffic"] * 6]


def test_a_censored_completion_served_without_an_estimate_is_imputed_by_the_serving_one() -> None:
    # A fallback-served request stopped at its limit: its length is only a lower bound,
    # so it trains above the limit (the serving predictor's conditional expectation).
    from ssjf.predict.baselines import ConstantPredictor

    serving = ConstantPredictor()
    serving.fit(["a", "b", "c", "d"], [400.0, 500.0, 600.0, 700.0], None)
    got: list[list[float]] = []

    class Spy(ConstantPredictor):
        def fit(self, prompts: Any, lengths: Any, models: Any = None) -> Any:
            got.append([float(x) for x in lengths])
            return super().fit(prompts, lengths, models)

    spy = Spy()
    spy.fit(["a", "b", "c", "d"], [400.0, 500.0, 600.0, 700.0], None)
    got.clear()
    r = Retrainer(spy, RetrainSettings(min_records=4, holdout=2, min_gain=0.0))
    for i in range(6):
        r.observe(Completion(f"prompt {i}", None, 50 + i, censored=(i == 0), estimate=None))
    event = r.retrain()
    assert event.error is None and got
    first = got[-1][0]  # prompt 0, censored at 50 tokens
    assert first > 50  # imputed above its limit, never trained as if 50 were true
