"""The paper's formulations of output-length prediction as supervised targets and decoders.

A formulation says how many outputs the head has, what target an example gets
from the lengths of its answers, which loss compares them, and how raw outputs
become a :class:`~ssjf.estimate.LengthEstimate` in tokens:

* ``regression``: the mean ``log1p`` length, L1 or MSE; point = ``expm1(output)``.
* ``bucket``: classes cut at percentiles of the training lengths (paper: 25/50/75/99th
  for 5 classes, 50/99th for 3); point = the training median of the predicted class
  (paper style) or the probability-weighted log-mean of the class medians.
* ``ordinal``: CORAL cumulative logits ``P(length > edge_k)``; the expected class
  is a continuous score mapped to tokens by a monotone calibration.
* ``pairwise`` / ``listwise``: a free score trained only for order (RankNet or
  hinge over batch pairs; ListMLE over the batch), mapped to tokens by the same
  monotone calibration.

Quantiles come from the training data: residuals of the calibrated point (log
space), or for the bucket model the class-probability mixture of each class's
training lengths. Everything here is numpy except ``loss`` and ``make_head``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ssjf.estimate import LengthEstimate

if TYPE_CHECKING:
    import torch

#: Quantile levels reported with every estimate.
LEVELS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
#: Paper's class edges as percentiles of the training lengths, by number of classes.
DEFAULT_PERCENTILES: dict[int, tuple[float, ...]] = {5: (25, 50, 75, 99), 3: (50, 99)}


def bucket_edges(lengths: Sequence[float] | np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Upper class edges (tokens) at the given percentiles of the training lengths."""
    arr = np.asarray(lengths, dtype=float)
    if arr.size == 0:
        raise ValueError("cannot compute bucket edges from no lengths")
    pct = np.asarray(percentiles, dtype=float)
    if np.any(np.diff(pct) <= 0) or pct.min() <= 0 or pct.max() >= 100:
        raise ValueError(f"percentiles must increase strictly inside (0, 100), got {percentiles!r}")
    return np.percentile(arr, pct)


def assign_class(lengths: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Class index of each length: 0 for ``length <= edges[0]``, ..., K-1 above the last edge."""
    return np.searchsorted(edges, lengths, side="left")


@dataclass(slots=True)
class MonotoneMap:
    """Strictly increasing score -> log1p(tokens) map: an isotonic fit plus a tie-breaker.

    Isotonic regression gives a step function; ties inside a step would throw away
    the score's order (and Kendall tau with it), so a tiny strictly increasing
    term (about ``TIE_EPS`` in log space, i.e. 0.1% of the length) is added:
    the calibrated tokens are as accurate as the isotonic fit and rank exactly as
    the score does.
    """

    xs: list[float] = field(default_factory=list)  # isotonic knots (scores)
    ys: list[float] = field(default_factory=list)  # their log1p(tokens)
    center: float = 0.0
    scale: float = 1.0

    TIE_EPS: ClassVar[float] = 1e-3

    def fit(self, scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> MonotoneMap:
        """Fit on per-example scores, mean log targets and weights (answers per example)."""
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
        iso.fit(scores, targets, sample_weight=weights)
        self.xs = [float(v) for v in iso.X_thresholds_]
        self.ys = [float(v) for v in iso.y_thresholds_]
        self.center = float(np.median(scores))
        self.scale = float(np.std(scores)) or 1.0
        return self

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        base = np.interp(scores, np.asarray(self.xs), np.asarray(self.ys))
        # asinh: unbounded (no ties even far outside the training scores), ~log growth.
        return base + self.TIE_EPS * np.arcsinh((scores - self.center) / self.scale) / 10


class Formulation:
    """Base: targets, loss, head and decoding for one way of posing the problem."""

    name = ""

    def __init__(self, **params: Any) -> None:
        self.params = params
        #: log-space residual quantiles of the point estimate on training answers
        self.resid_q: list[float] = [0.0] * len(LEVELS)

    # -- training side
    @property
    def n_outputs(self) -> int:
        return 1

    def prepare(self, all_lengths: np.ndarray) -> None:
        """Fit data-dependent state (class edges) from every training answer's length."""

    def targets(self, groups: Sequence[np.ndarray]) -> np.ndarray:
        """Per-example target rows from each example's answer lengths (default: mean log1p)."""
        return np.array([np.log1p(g).mean() for g in groups], dtype=np.float32)

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def make_head(self, hidden: int) -> torch.nn.Module:
        import torch

        return torch.nn.Linear(hidden, self.n_outputs)

    def init_head(self, head: torch.nn.Module, targets: np.ndarray) -> None:
        """Start the head's bias at the answer for an average prompt.

        A log length is ~5: a zero-initialised regression head would spend most of a
        short CPU run walking its bias there (Adam moves it ~``head_lr`` per step),
        and meanwhile an L1 gradient has the same sign for every example, so it
        carries no ranking signal at all.
        """
        bias = self._initial_bias(targets)
        if bias is not None and getattr(head, "bias", None) is not None:
            import torch

            with torch.no_grad():
                head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))  # type: ignore[operator, arg-type]

    def _initial_bias(self, targets: np.ndarray) -> np.ndarray | None:
        return None

    # -- decoding side
    def scores(self, out: np.ndarray) -> np.ndarray:
        """A 1-D ranking score (larger = longer) from raw outputs."""
        return out[:, 0].astype(float)

    def log_points(self, out: np.ndarray) -> np.ndarray:
        """Predicted ``log1p(tokens)`` from raw outputs."""
        return self.scores(out)

    def finish(self, out: np.ndarray, groups: Sequence[np.ndarray]) -> None:
        """Fit post-hoc calibration on the training outputs; default: residual quantiles."""
        pts = self.log_points(out)
        resid = np.concatenate([np.log1p(g) - p for g, p in zip(groups, pts, strict=True)])
        self.resid_q = [float(v) for v in np.quantile(resid, LEVELS)]

    def estimates(self, out: np.ndarray) -> list[LengthEstimate]:
        pts = self.log_points(out)
        rq = np.asarray(self.resid_q)
        result = []
        for p in pts:
            qs = np.maximum(np.expm1(p + rq), 0.0)
            qs = np.maximum.accumulate(qs)
            point = max(float(np.expm1(p)), 0.0)
            result.append(LengthEstimate(point, tuple(zip(LEVELS, qs.tolist(), strict=True))))
        return result

    # -- persistence
    def state(self) -> dict[str, Any]:
        return {"resid_q": self.resid_q}

    def load_state(self, state: dict[str, Any]) -> None:
        self.resid_q = [float(v) for v in state["resid_q"]]


class Regression(Formulation):
    """Regress the mean log1p length with L1 or MSE (the paper's regression)."""

    name = "regression"

    def _initial_bias(self, targets: np.ndarray) -> np.ndarray | None:
        center = np.median(targets) if self.params.get("loss", "l1") == "l1" else targets.mean()
        return np.array([center])

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ssjf.predict.finetune.losses import regression_loss

        return regression_loss(out[:, 0], target, self.params.get("loss", "l1"))


class _Calibrated(Formulation):
    """A formulation whose score is mapped to tokens by a fitted :class:`MonotoneMap`."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.calib = MonotoneMap()

    def log_points(self, out: np.ndarray) -> np.ndarray:
        return self.calib(self.scores(out))

    def finish(self, out: np.ndarray, groups: Sequence[np.ndarray]) -> None:
        means = np.array([np.log1p(g).mean() for g in groups])
        weights = np.array([len(g) for g in groups], dtype=float)
        self.calib.fit(self.scores(out), means, weights)
        super().finish(out, groups)

    def state(self) -> dict[str, Any]:
        c = self.calib
        return {**super().state(), "calib": [c.xs, c.ys, c.center, c.scale]}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        xs, ys, center, scale = state["calib"]
        self.calib = MonotoneMap(list(xs), list(ys), float(center), float(scale))


class Pairwise(_Calibrated):
    """ "Which is longer" on every pair of the batch (RankNet logistic or hinge)."""

    name = "pairwise"

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ssjf.predict.finetune.losses import pairwise_loss

        return pairwise_loss(
            out[:, 0],
            target,
            kind=self.params.get("loss", "logistic"),
            margin=float(self.params.get("margin", 1.0)),
            min_gap=float(self.params.get("min_gap", 0.0)),
        )


class Listwise(_Calibrated):
    """ListMLE over the batch, as in learning-to-rank schedulers."""

    name = "listwise"

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ssjf.predict.finetune.losses import listmle_loss

        return listmle_loss(out[:, 0], target)


class _Classes(Formulation):
    """Shared state of the class-based formulations: edges and class representatives."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        n = int(params.get("n_classes", 5))
        pct = params.get("percentiles") or DEFAULT_PERCENTILES.get(n)
        if pct is None or len(pct) != n - 1:
            raise ValueError(
                f"{n} classes need {n - 1} percentiles (defaults exist for 3 and 5), got {pct!r}"
            )
        self.n_classes = n
        self.percentiles = [float(p) for p in pct]
        self.edges: list[float] = []
        self.reps: list[float] = []  # training median length of each class
        self.class_q: list[list[float]] = []  # per class: log1p lengths at QGRID

    def prepare(self, all_lengths: np.ndarray) -> None:
        edges = bucket_edges(all_lengths, self.percentiles)
        cls = assign_class(all_lengths, edges)
        self.edges = [float(e) for e in edges]
        self.reps, self.class_q = [], []
        for c in range(self.n_classes):
            members = all_lengths[cls == c]
            if members.size == 0:  # an empty class: stand in with its edge(s)
                lo = edges[c - 1] if c > 0 else 0.0
                hi = edges[c] if c < len(edges) else lo * 2 + 1
                members = np.array([(lo + hi) / 2])
            self.reps.append(float(np.median(members)))
            self.class_q.append([float(v) for v in np.quantile(np.log1p(members), _QGRID)])

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "edges": self.edges,
            "reps": self.reps,
            "class_q": self.class_q,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.edges = [float(v) for v in state["edges"]]
        self.reps = [float(v) for v in state["reps"]]
        self.class_q = [[float(v) for v in row] for row in state["class_q"]]


#: Levels at which each class's length distribution is stored (for mixture quantiles).
_QGRID = np.linspace(0.0, 1.0, 21)


class Bucket(_Classes):
    """Percentile-bucket classification (the paper's 3- and 5-class models)."""

    name = "bucket"

    @property
    def n_outputs(self) -> int:
        return self.n_classes

    def targets(self, groups: Sequence[np.ndarray]) -> np.ndarray:
        edges = np.asarray(self.edges)
        rows = np.zeros((len(groups), self.n_classes), dtype=np.float32)
        for i, g in enumerate(groups):
            rows[i] = np.bincount(assign_class(g, edges), minlength=self.n_classes) / len(g)
        return rows

    def _initial_bias(self, targets: np.ndarray) -> np.ndarray | None:
        return np.log(targets.mean(axis=0) + 1e-3)  # log class priors

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ssjf.predict.finetune.losses import soft_cross_entropy

        return soft_cross_entropy(out, target)

    def probs(self, out: np.ndarray) -> np.ndarray:
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def scores(self, out: np.ndarray) -> np.ndarray:
        return self.log_points(out)

    def log_points(self, out: np.ndarray) -> np.ndarray:
        log_reps = np.log1p(np.asarray(self.reps))
        if self.params.get("point", "class") == "expected":
            return self.probs(out) @ log_reps
        return log_reps[np.argmax(out, axis=1)]

    def finish(self, out: np.ndarray, groups: Sequence[np.ndarray]) -> None:
        """Nothing to calibrate: quantiles come from the class mixture."""

    def estimates(self, out: np.ndarray) -> list[LengthEstimate]:
        probs = self.probs(out)
        pts = np.expm1(self.log_points(out))
        cq = np.asarray(self.class_q)  # (K, len(_QGRID)) log1p lengths: a sample per class
        grid = np.unique(cq)
        # Each class's empirical CDF on the common grid, mixed by the class probabilities;
        # a quantile is the first grid value whose mixture CDF reaches the level.
        cdfs = (cq[:, :, None] <= grid[None, None, :]).mean(axis=1)  # (K, G)
        mix = probs @ cdfs  # (N, G)
        result = []
        for p, cdf in zip(pts, mix, strict=True):
            pos = np.minimum(np.searchsorted(cdf, np.asarray(LEVELS) - 1e-9), len(grid) - 1)
            qs = np.maximum.accumulate(np.maximum(np.expm1(grid[pos]), 0.0))
            result.append(LengthEstimate(float(p), tuple(zip(LEVELS, qs.tolist(), strict=True))))
        return result


class Ordinal(_Classes, _Calibrated):
    """Ordinal classification with CORAL cumulative logits ``P(length > edge_k)``."""

    name = "ordinal"

    @property
    def n_outputs(self) -> int:
        return self.n_classes - 1

    def targets(self, groups: Sequence[np.ndarray]) -> np.ndarray:
        edges = np.asarray(self.edges)
        return np.array([(g[:, None] > edges[None, :]).mean(axis=0) for g in groups], np.float32)

    def _initial_bias(self, targets: np.ndarray) -> np.ndarray | None:
        share = np.clip(targets.mean(axis=0), 1e-3, 1 - 1e-3)
        return np.log(share / (1 - share))  # logit of the share above each edge

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ssjf.predict.finetune.losses import coral_loss

        return coral_loss(out, target)

    def make_head(self, hidden: int) -> torch.nn.Module:
        from ssjf.predict.finetune.model import CoralHead

        return CoralHead(hidden, self.n_outputs)

    def scores(self, out: np.ndarray) -> np.ndarray:
        """Expected class index: the sum of the cumulative probabilities."""
        return (1.0 / (1.0 + np.exp(-out))).sum(axis=1)


FORMULATIONS: dict[str, type[Formulation]] = {
    f.name: f for f in (Regression, Bucket, Ordinal, Pairwise, Listwise)
}


def make_formulation(name: str, **params: Any) -> Formulation:
    """Build a formulation by name with its parameters."""
    try:
        cls = FORMULATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown formulation {name!r}; use one of {sorted(FORMULATIONS)}"
        ) from None
    return cls(**params)
