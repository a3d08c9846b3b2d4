"""`unseen_ngrams="drop"` drops only n-grams no training prompt had, even when every hashed
column was seen (large traffic logs fill the hash space)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssjf.predict import load_predictor, make_predictor


def _data() -> tuple[list[str], list[float]]:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    prompts = [" ".join(rng.choice(words, size=8)) for _ in range(200)]
    lengths = [float(10 + 5 * len(set(p.split()))) for p in prompts]
    return prompts, lengths


def test_with_every_column_seen_drop_equals_keep(tmp_path: Path) -> None:
    prompts, lengths = _data()
    small = {"n_features": 16, "residual_alpha": None}  # 16 columns: all seen
    drop = make_predictor("tfidf", unseen_ngrams="drop", **small).fit(prompts, lengths)
    keep = make_predictor("tfidf", unseen_ngrams="keep", **small).fit(prompts, lengths)
    assert all((idf < drop.idf_unseen[k] - 1e-9).all() for k, idf in enumerate(drop.idf))
    probe = prompts[:20]
    np.testing.assert_allclose(drop.predict_points(probe), keep.predict_points(probe))
    drop.save(tmp_path / "p")
    again = load_predictor(tmp_path / "p")
    np.testing.assert_allclose(again.predict_points(probe), drop.predict_points(probe))
