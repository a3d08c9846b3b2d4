"""The tfidf family's options: length-cue columns, unseen n-grams; saved and loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ssjf.predict import load_predictor, make_predictor
from tests.predict.factories import synthetic


def test_cues_add_columns_and_round_trip(tmp_path: Path) -> None:
    prompts, lengths, models = synthetic(30)
    plain = make_predictor("tfidf", residual_alpha=None).fit(prompts, lengths, models)
    cued = make_predictor("tfidf", residual_alpha=None, cues=True).fit(prompts, lengths, models)
    extra = cued._features(prompts[:3]).shape[1] - plain._features(prompts[:3]).shape[1]
    from ssjf.predict.cues import CUE_NAMES

    assert extra == len(CUE_NAMES)
    cued.save(tmp_path / "p")
    back = load_predictor(tmp_path / "p")
    asks = ["write 500 words about rain", "answer yes or no: is it raining?"]
    assert np.allclose(back.predict_points(asks, models[:2]), cued.predict_points(asks, models[:2]))


def test_old_saves_keep_their_unseen_ngrams_behaviour(tmp_path: Path) -> None:
    prompts, lengths, models = synthetic(30)
    old = make_predictor("tfidf", unseen_ngrams="keep").fit(prompts, lengths, models)
    old.save(tmp_path / "p")
    cfg_path = tmp_path / "p" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["params"]["unseen_ngrams"]  # as written before the parameter existed
    cfg_path.write_text(json.dumps(cfg))
    back = load_predictor(tmp_path / "p")
    assert back.params["unseen_ngrams"] == "keep"
    asks = ["please essay about zzqx wvvb", "please name a kkjq"]
    assert np.allclose(back.predict_points(asks, models[:2]), old.predict_points(asks, models[:2]))
    assert make_predictor("tfidf").params["unseen_ngrams"] == "drop"
