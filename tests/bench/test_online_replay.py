"""The online replay: windows partition the run, spans and checks are computed, data is honest."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssjf.bench.online_replay import OnlineConfig, run_online
from ssjf.bench.online_stream import OnlineData, repeats, sample_stream
from ssjf.datadir import data_dir
from tests.sim.online_factories import records, shipped

TRAIN = records(80, ["a", "b"], seed=1, tag="t")
DATA = OnlineData(
    train=TRAIN,
    unseen=records(900, ["x", "y"], seed=2, tag="u"),
    seen=records(300, ["a", "b"], seed=3, tag="s"),
    describe={"synthetic": True},
)
CFG = OnlineConfig(requests=400, seeds=(0, 1), window=70, marks=(50, 200),
                   retrain="min_records=40:every=100:holdout=20")  # fmt: skip


@pytest.fixture(scope="module")
def result() -> dict:
    return run_online(CFG, data=DATA, predictor=shipped(TRAIN))


def test_windows_partition_the_run(result: dict) -> None:
    wins = result["windows"]
    assert [w["start"] for w in wins] == list(range(0, CFG.requests, CFG.window))
    assert all(a["stop"] == b["start"] for a, b in pairwise(wins))
    assert wins[-1]["stop"] == CFG.requests
    # Every retrain lies in exactly one window, and all of them are listed.
    listed = [e for w in wins for e in w["retrains"]]
    assert len(listed) == len(result["events"]) > 0
    for w in wins:
        assert all(w["start"] <= e["arrival_index"] < w["stop"] for e in w["retrains"])


def test_spans_and_figures(result: dict) -> None:
    spans = result["spans"]
    assert set(spans) == {"whole_run", "after_50", "after_200"}
    for span, figs in spans.items():
        assert figs["fcfs"]["oracle_gain_share"] == pytest.approx(0.0)
        assert figs["sjf"]["oracle_gain_share"] == pytest.approx(1.0)
        assert figs["fcfs"]["tau"] is None and figs["sjf"]["tau"] is None
        for arm in CFG.arms:
            assert -1.0 <= figs[arm]["tau"] <= 1.0
        if span.startswith("after_"):  # arrived after the N-th completion: at most n - N
            n_done = int(span.removeprefix("after_"))
            assert all(0 < f["requests"] <= CFG.requests - n_done for f in figs.values())
    # The unseen generators answer 6x / 0.2x: learning them must lift the pooled tau.
    after = spans["after_200"]
    assert after["calibrated"]["tau"] > after["shipped"]["tau"] + 0.1
    assert after["retrained"]["tau"] > after["shipped"]["tau"] + 0.1
    r = result["ratios_vs_shipped"]["after_50"]["calibrated"]
    assert r["tau"] == pytest.approx(
        spans["after_50"]["calibrated"]["tau"] / spans["after_50"]["shipped"]["tau"]
    )
    assert set(result["checks"]) == {
        "calibrated_2x_shipped_after_50",
        "retrained_2x_shipped_after_50",
        "retrained_beats_calibrated_after_200",
    }
    assert any(e["swapped"] for e in result["events"])
    assert result["stream"]["unseen_request_share"] == pytest.approx(0.8)


def test_replay_is_deterministic(result: dict) -> None:
    again = run_online(CFG, data=DATA, predictor=shipped(TRAIN))
    assert again["spans"] == result["spans"]
    assert [w["arms"] for w in again["windows"]] == [w["arms"] for w in result["windows"]]


def test_summarize_needs_no_shipped_arm() -> None:
    cfg = OnlineConfig(requests=100, seeds=(0,), window=30, marks=(20,), arms=("calibrated",))
    out = run_online(cfg, data=DATA, predictor=shipped(TRAIN))
    assert out["ratios_vs_shipped"] == {} and out["checks"] == {}
    assert len(out["windows"]) == 4


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"requests": 1}, "requests"),
        ({"window": 0}, "window"),
        ({"seeds": ()}, "seed"),
        ({"marks": (3000,)}, "marks"),
        ({"arms": ("oracle",)}, "arms"),
        ({"load": 0.0}, "load"),
        ({"retrain": "every=0"}, "every"),
        ({"retrain": "often=3"}, "retrain spec"),
        ({"calibration": "window=0"}, "window"),
    ],
)
def test_bad_settings_are_named(kw: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        OnlineConfig(**kw)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), share=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_stream_mix_and_no_repeats_of_a_record(n: int, share: float, seed: int) -> None:
    s = sample_stream(DATA, n, share, np.random.default_rng(seed))
    assert len(s) == n
    assert sum(m in ("a", "b") for m in s.models) == round(share * n)
    assert len(set(s.prompt_ids)) == n  # drawn without replacement


def test_stream_too_long_for_its_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="--online-requests"):
        sample_stream(DATA, 2000, 0.2, np.random.default_rng(0))


def test_repeats_flag_later_copies_by_text() -> None:
    assert repeats(["Hello, world", "other", "hello world!", "Other", "x"]) == [
        False, False, True, True, False
    ]  # fmt: skip
    assert repeats([]) == []


@pytest.mark.skipif(data_dir() is None, reason="needs the shared data (SSJF_DATA_DIR)")
def test_real_stream_is_unseen_by_the_shipped_training() -> None:
    from ssjf.bench.online_stream import load_online_data
    from ssjf.predict.split import prompt_key

    data = load_online_data(max_train=5000)
    trained = set(data.train.model_names)
    assert not trained & set(data.unseen.model_names)
    assert len(data.unseen.model_names) >= 40  # most of zeroeval's 57
    assert set(data.seen.model_names) <= trained
    train_keys = {prompt_key(p) for p in data.train.prompts}
    assert not train_keys & {prompt_key(p) for p in [*data.unseen.prompts, *data.seen.prompts]}


def test_checks_read_the_issue_bar() -> None:
    from ssjf.bench.online_replay import _checks

    cfg = OnlineConfig(requests=2000)

    def span(ship: tuple, cal: tuple, ret: tuple) -> dict:
        return {a: {"tau": t, "oracle_gain_share": s}
                for a, (t, s) in zip(("shipped", "calibrated", "retrained"), (ship, cal, ret),
                                     strict=True)}  # fmt: skip

    spans = {"after_200": span((0.2, -0.1), (0.4, 0.05), (0.39, 0.3)),
             "after_1000": span((0.2, 0.1), (0.4, 0.5), (0.5, 0.6))}  # fmt: skip
    assert _checks(cfg, spans) == {
        "calibrated_2x_shipped_after_200": True,  # any gain beats a shipped share <= 0
        "retrained_2x_shipped_after_200": False,  # tau 0.39 < 2 x 0.2
        "retrained_beats_calibrated_after_1000": True,
    }
    spans["after_1000"]["retrained"]["oracle_gain_share"] = None
    assert _checks(cfg, spans)["retrained_beats_calibrated_after_1000"] is None
