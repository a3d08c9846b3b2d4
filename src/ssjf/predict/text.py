"""The cheap text family: hashed word/char n-grams with TF-IDF weights + ridge.

Hashing keeps the featuriser stateless (no vocabulary to save or to pickle); the
only learned state is the IDF of the hashed columns, stored sparsely. Prompt
length features (words, characters, lines of the *full* prompt) are appended,
so the family is never worse than input-length regression.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ssjf.predict.base import CONFIG_FILE, register_predictor
from ssjf.predict.baselines import length_features
from ssjf.predict.scored import ScorePredictor

#: Weight of the (standardised) length columns next to l2-normalised n-gram rows.
_LENGTH_SCALE = 0.5


@register_predictor("tfidf")
class TfidfPredictor(ScorePredictor):
    """TF-IDF of hashed word (and optionally char) n-grams + ridge on the prompt score."""

    defaults: ClassVar[dict[str, Any]] = {
        # 2^18 hashed columns per analyser: collisions are rare at this data size and
        # prediction cost does not depend on the width.
        "n_features": 2**18,
        # Word unigrams+bigrams carry the task ("write an essay" vs "answer yes/no").
        "word_ngrams": [1, 2],
        # Char n-grams within words ([2, 4]) cost 2x fit/predict time and scored lower
        # on the benchmark split (alpaca tau 0.477 vs 0.486), so they are off by default.
        "char_ngrams": [0, 0],
        "length_features": True,
        # Explicit length cues (ssjf.predict.cues: requested word/item counts, short/long
        # answer words, code, options), standardised, next to the n-grams.
        "cues": False,
        # n-grams never seen in training have no ridge weight; "drop" leaves them out of a
        # row's norm too, so a novel template (another collection's boilerplate) does not
        # shrink the prompt's score towards the mean; "keep" (the original) counts them.
        # Leave-one-collection-out inner CV (ssjf.bench.inner_cv_groups, 5 training
        # collections): tau_mean 0.246 -> 0.261; in-distribution inner CV (ssjf.bench.inner_cv,
        # sharegpt dropped): alpaca 0.413 -> 0.425, flask 0.567 -> 0.574, MAE 169 -> 160 / 87 -> 88.
        # tfidf-embed inherits it: collection 0.302 -> 0.308; alpaca 0.480 -> 0.481, flask
        # 0.582 -> 0.588, MAE 159 -> 156 / 94 -> 94.
        "unseen_ngrams": "drop",
        # Per-model residual heads (ssjf.predict.residual) at ridge strength 2: grouped
        # 4-fold inner CV on the bench's training prompts, alpaca tau 0.419 -> 0.431,
        # flask 0.523 -> 0.563, MAE 172 -> 157 / 94 -> 89 (docs/predictors.md).
        "residual_alpha": 2.0,
    }
    bench_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["unseen_ngrams"] not in ("keep", "drop"):
            raise TypeError("unseen_ngrams must be 'keep' or 'drop'")
        self._vectorizers: list[Any] | None = None
        self.idf: list[np.ndarray] = []
        #: IDF of a column no training prompt had (df = 0), per n-gram kind: the "unseen"
        #: mark. Not ``idf.max()``: once every hashed column is seen (large logs), the
        #: rarest seen n-grams would be taken for unseen.
        self.idf_unseen: list[float] = []
        self.len_mean = np.zeros(3)
        self.len_std = np.ones(3)
        self.cue_mean = np.zeros(0)
        self.cue_std = np.ones(0)

    def _hashers(self) -> list[Any]:
        """``(analyzer, FeatureHasher)`` per n-gram kind, built once (cheap single calls)."""
        if self._vectorizers is None:
            from ssjf.predict._deps import require_sklearn

            require_sklearn()
            from sklearn.feature_extraction import FeatureHasher
            from sklearn.feature_extraction.text import HashingVectorizer

            n = int(self.params["n_features"])
            specs: list[dict[str, Any]] = []
            lo, hi = self.params["word_ngrams"]
            specs.append(
                {"ngram_range": (int(lo), int(hi)), "token_pattern": r"(?u)\b\w+\b|[^\w\s]"}
            )
            char = self.params["char_ngrams"]
            if char and int(char[1]) > 0:
                specs.append({"analyzer": "char_wb", "ngram_range": (int(char[0]), int(char[1]))})
            hashers = []
            for spec in specs:
                # HashingVectorizer defines the tokenisation; FeatureHasher does the
                # hashing without rebuilding the analyzer on every call (~1.5 ms saved).
                vec = HashingVectorizer(n_features=n, alternate_sign=False, norm=None, **spec)
                hasher = FeatureHasher(n_features=n, input_type="string", alternate_sign=False)
                hashers.append((vec.build_analyzer(), hasher))
            self._vectorizers = hashers
        return self._vectorizers

    def _counts(self, prompts: Sequence[str], which: int) -> Any:
        analyzer, hasher = self._hashers()[which]
        x = hasher.transform(analyzer(p) for p in prompts)
        x.sum_duplicates()
        return x

    def _fit_features(self, prompts: Sequence[str]) -> None:
        n = len(prompts)
        self.idf = []
        self.idf_unseen = [float(np.log(1.0 + n) + 1.0)] * len(self._hashers())
        for k in range(len(self._hashers())):
            counts = self._counts(prompts, k).tocsc()
            df = np.diff(counts.indptr)  # documents per column
            idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
            self.idf.append(idf)
        if self.params["length_features"]:
            lf = length_features(prompts)
            self.len_mean = lf.mean(axis=0)
            self.len_std = np.maximum(lf.std(axis=0), 1e-6)
        if self.params["cues"]:
            from ssjf.predict.cues import prompt_cues

            cf = prompt_cues(prompts)
            self.cue_mean, self.cue_std = cf.mean(axis=0), np.maximum(cf.std(axis=0), 1e-6)

    def _transform(self, prompts: Sequence[str]) -> Any:
        import scipy.sparse as sp

        n = len(prompts)
        blocks = []
        for k, idf in enumerate(self.idf):
            x = self._counts(prompts, k).astype(np.float64)
            # sublinear tf x idf, then l2-normalise rows, all on the CSR data in place
            x.data = np.log1p(x.data) * idf[x.indices]
            if self.params["unseen_ngrams"] == "drop":
                # df = 0 in training (a seen column's IDF is lower by >= log 2)
                x.data[idf[x.indices] >= self.idf_unseen[k] - 1e-9] = 0.0
            rows = np.repeat(np.arange(n), np.diff(x.indptr))
            norms = np.sqrt(np.bincount(rows, weights=x.data**2, minlength=n))
            x.data /= np.maximum(norms[rows], 1e-12)
            blocks.append(x)
        if self.params["length_features"]:
            lf = (length_features(prompts) - self.len_mean) / self.len_std * _LENGTH_SCALE
            blocks.append(sp.csr_matrix(lf))
        if self.params["cues"]:
            from ssjf.predict.cues import prompt_cues

            # Clipped at 3 standard deviations: a prompt full of numbers from another
            # collection must not extrapolate the ridge (MAE on gsm8k prompts, inner CV).
            cf = np.clip((prompt_cues(prompts) - self.cue_mean) / self.cue_std, -3.0, 3.0)
            cf *= _LENGTH_SCALE
            blocks.append(sp.csr_matrix(cf))
        return blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csr")

    def _out_of_fold(self, x: Any, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """With ``unseen_ngrams="drop"``, a held fold's rows lose the n-grams its training
        part never had, as new prompts do at prediction time: the per-model maps are then
        fitted on scores of the same scale as served ones (else the in-distribution MAE
        grew by 7-13%, inner CV)."""
        n, folds = len(target), int(self.params["folds"])
        if self.params["unseen_ngrams"] != "drop" or folds < 2 or n < 2 * folds:
            return super()._out_of_fold(x, target, weight)
        fold_of = np.random.default_rng(int(self.params["seed"])).permutation(n) % folds
        oof = np.empty(n)
        for k in range(folds):
            test = fold_of == k
            coef, b = self._ridge(x[~test], target[~test], weight[~test])
            seen = np.diff(x[~test].tocsc().indptr) > 0
            oof[test] = np.asarray(self._drop_columns(x[test], seen) @ coef).ravel() + b
        return oof

    def _drop_columns(self, x: Any, seen: np.ndarray) -> Any:
        """``x`` (CSR) with n-gram columns not in ``seen`` zeroed, each block re-normalised."""
        x = x.tocsr(copy=True)
        width = int(self.params["n_features"])
        cols = x.indices
        ngram = cols < width * len(self.idf)
        x.data[ngram & ~seen[cols]] = 0.0
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        for k in range(len(self.idf)):
            block = (cols >= k * width) & (cols < (k + 1) * width)
            sq = np.bincount(rows[block], weights=x.data[block] ** 2, minlength=x.shape[0])
            x.data[block] /= np.maximum(np.sqrt(sq), 1e-12)[rows[block]]
        return x

    def _load_weights(self, path: Path) -> None:
        super()._load_weights(path)
        # A save from before ``unseen_ngrams`` existed keeps the behaviour it was fitted with.
        saved = json.loads((path / CONFIG_FILE).read_text()).get("params") or {}
        if "unseen_ngrams" not in saved:
            self.params["unseen_ngrams"] = "keep"

    def _feature_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {"len_mean": self.len_mean, "len_std": self.len_std}
        if self.params["cues"]:
            state.update(cue_mean=self.cue_mean, cue_std=self.cue_std)
        for i, idf in enumerate(self.idf):
            # Store only columns seen in training; the rest share the unseen IDF (saved
            # under its old name: older saves hold idf.max(), the same value whenever
            # some column was unseen).
            seen = np.flatnonzero(idf < self.idf_unseen[i] - 1e-9)
            state[f"idf{i}_cols"] = seen
            state[f"idf{i}_vals"] = idf[seen]
            state[f"idf{i}_max"] = np.array([self.idf_unseen[i]])
        return state

    def _set_feature_state(self, state: dict[str, np.ndarray]) -> None:
        self.len_mean = state["len_mean"]
        self.len_std = state["len_std"]
        if self.params["cues"]:
            self.cue_mean, self.cue_std = state["cue_mean"], state["cue_std"]
        n = int(self.params["n_features"])
        self.idf = []
        self.idf_unseen = [float(state[f"idf{i}_max"][0]) for i in range(len(self._hashers()))]
        for i in range(len(self._hashers())):
            idf = np.full(n, float(state[f"idf{i}_max"][0]))
            idf[state[f"idf{i}_cols"]] = state[f"idf{i}_vals"]
            self.idf.append(idf)
