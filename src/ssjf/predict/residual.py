"""Per-model residual heads: what one LLM does differently from the shared prompt score.

The shared score (:mod:`ssjf.predict.scored`) gives every model the same order of
prompts. Models do differ in style, though: one answers coding questions with a
short snippet, another with a tutorial; one is terse on maths, another shows every
step. A residual head is a ridge, one per model with enough records, on the same
features, fitted to what the shared (out-of-fold) score leaves unexplained for that
model. The model's score becomes ``shared + head_m(x)``; models without a head, and
models never seen in training, keep the shared score.

The heads are stored sparse: with hashed n-grams a head's dense vector would be
2^18 floats, but a ridge solution lies in the span of its training rows, so it is
exactly zero on every feature the model's prompts never had.

Heavily regularised (a few hundred records per model against thousands of
features), fitted on out-of-fold shared scores (in-sample scores would leave the
heads nothing honest to learn), and with out-of-fold head outputs of their own, so
that the per-model calibration that follows sees honest scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class ResidualHeads:
    """One ridge per model on the residual of the shared score; none for the rest."""

    alpha: float = 2.0
    #: Models with fewer records get no head (too few to learn a style from).
    min_records: int = 50
    folds: int = 3
    seed: int = 0
    names: list[str] = field(default_factory=list)
    #: One row per head (scipy CSR, ``len(names) x n_features``); None before fit/load.
    coef: Any = None
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(
        self, x: Any, row: np.ndarray, residual: np.ndarray, models: Sequence[str | None]
    ) -> np.ndarray:
        """Fit the heads; return each record's out-of-fold head output.

        ``x``: features of the distinct prompts; ``row``: each record's row in ``x``;
        ``residual``: each record's target minus its prompt's out-of-fold shared
        score. Records of models without a head get 0.
        """
        from ssjf.predict._deps import require_sklearn

        require_sklearn()
        import scipy.sparse as sp
        from sklearn.linear_model import Ridge

        n = len(residual)
        names = np.array(["" if m is None else m for m in models], dtype=object)
        oof = np.zeros(n)
        heads: list[tuple[str, Any, float]] = []
        for name in sorted(set(names.tolist()) - {""}):
            idx = np.flatnonzero(names == name)
            if len(idx) < max(self.min_records, 2 * self.folds):
                continue
            xm, rm = x[row[idx]], residual[idx]
            fold_of = np.random.default_rng(self.seed).permutation(len(idx)) % self.folds
            for k in range(self.folds):
                test = fold_of == k
                r = Ridge(alpha=self.alpha).fit(xm[~test], rm[~test])
                oof[idx[test]] = np.asarray(r.predict(xm[test])).ravel()
            r = Ridge(alpha=self.alpha).fit(xm, rm)
            head = sp.csr_matrix(np.asarray(r.coef_, dtype=float).reshape(1, -1))
            head.eliminate_zeros()
            heads.append((str(name), head, float(r.intercept_)))
        self.names = [h[0] for h in heads]
        rows = [h[1] for h in heads]
        self.coef = sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, x.shape[1]))
        self.intercept = np.array([h[2] for h in heads], dtype=float)
        return oof

    def apply(self, x: Any, models: Sequence[str | None]) -> np.ndarray:
        """Each row's head output for its model (0 where the model has no head)."""
        out = np.zeros(x.shape[0])
        if not self.names:
            return out
        row_of = {name: i for i, name in enumerate(self.names)}
        which = np.array([row_of.get(m, -1) if m is not None else -1 for m in models])
        for h in np.unique(which[which >= 0]):
            sel = np.flatnonzero(which == h)
            y = self.coef[h] @ x[sel].T  # (1 x rows): sparse for sparse x, dense otherwise
            y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            out[sel] = y.ravel() + self.intercept[h]
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save (no pickles: names as a unicode array)."""
        if not self.names:
            return {}
        c = self.coef
        return {
            "res_names": np.array(self.names, dtype=str),
            "res_data": c.data,
            "res_indices": c.indices,
            "res_indptr": c.indptr,
            "res_shape": np.array(c.shape, dtype=np.int64),
            "res_intercept": self.intercept,
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned (no keys: no heads, as in older saves)."""
        import scipy.sparse as sp

        if "res_names" not in state:
            self.names, self.coef, self.intercept = [], sp.csr_matrix((0, 0)), np.zeros(0)
            return
        self.names = [str(n) for n in state["res_names"].tolist()]
        shape = tuple(int(v) for v in state["res_shape"])
        self.coef = sp.csr_matrix(
            (state["res_data"], state["res_indices"], state["res_indptr"]), shape=shape
        )
        self.intercept = np.asarray(state["res_intercept"], dtype=float)
