"""Fine-tuned predictors' pure parts: losses against hand-computed values, bucket edges,
calibration, truncation strategies (no model training here)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from ssjf.predict.finetune import losses  # noqa: E402
from ssjf.predict.finetune.formulations import (  # noqa: E402
    Bucket,
    MonotoneMap,
    Ordinal,
    assign_class,
    bucket_edges,
    make_formulation,
)
from ssjf.predict.finetune.text import encode, model_prefix, truncate_ids  # noqa: E402


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_listmle_matches_hand_computation() -> None:
    # Targets order the items 0 (s=1), 2 (s=0), 1 (s=2).
    loss = losses.listmle_loss(t(1.0, 2.0, 0.0), t(3.0, 1.0, 2.0))
    e = math.e
    expected = (math.log(e + 1 + e**2) - 1) + math.log(1 + e**2) + 0.0
    assert float(loss) == pytest.approx(expected / 3)


def test_listmle_is_smaller_for_the_right_order() -> None:
    target = t(3.0, 2.0, 1.0)
    assert float(losses.listmle_loss(t(3.0, 2.0, 1.0), target)) < float(
        losses.listmle_loss(t(1.0, 2.0, 3.0), target)
    )


def test_pairwise_losses_match_hand_computation() -> None:
    scores, targets = t(0.0, 1.0), t(1.0, 0.0)  # item 0 is longer but scored lower
    assert float(losses.pairwise_loss(scores, targets)) == pytest.approx(math.log(1 + math.e))
    hinge = losses.pairwise_loss(scores, targets, kind="margin", margin=1.0)
    assert float(hinge) == pytest.approx(2.0)
    # Pairs closer than min_gap are ignored: no pair left -> zero loss.
    assert float(losses.pairwise_loss(scores, targets, min_gap=5.0)) == 0.0
    with pytest.raises(ValueError, match="pairwise loss"):
        losses.pairwise_loss(scores, targets, kind="nope")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=8), st.floats(-10, 10))
def test_ranking_losses_ignore_a_shift_of_the_scores(values: list[float], shift: float) -> None:
    s = torch.tensor(values, dtype=torch.float64)
    target = torch.arange(len(values), dtype=torch.float64)
    for fn in (losses.listmle_loss, losses.pairwise_loss):
        assert float(fn(s + shift, target)) == pytest.approx(float(fn(s, target)), abs=1e-9)
        assert float(fn(s, target)) >= 0.0


def test_coral_and_soft_ce_match_hand_computation() -> None:
    coral = losses.coral_loss(t(0.0, 0.0)[None], t(1.0, 0.0)[None])
    assert float(coral) == pytest.approx(2 * math.log(2))
    ce = losses.soft_cross_entropy(t(0.0, 0.0)[None], t(0.5, 0.5)[None])
    assert float(ce) == pytest.approx(math.log(2))
    hard = losses.soft_cross_entropy(t(2.0, 0.0)[None], t(1.0, 0.0)[None])
    assert float(hard) == pytest.approx(math.log(1 + math.exp(-2)))


def test_regression_losses() -> None:
    assert float(losses.regression_loss(t(1.0, 3.0), t(2.0, 1.0), "l1")) == pytest.approx(1.5)
    assert float(losses.regression_loss(t(1.0, 3.0), t(2.0, 1.0), "mse")) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="regression loss"):
        losses.regression_loss(t(1.0), t(1.0), "huber")


def test_bucket_edges_at_percentiles_and_class_assignment() -> None:
    lengths = np.arange(1, 101, dtype=float)
    edges = bucket_edges(lengths, (25, 50, 75, 99))
    assert edges.tolist() == pytest.approx([25.75, 50.5, 75.25, 99.01])
    assert assign_class(np.array([1, 25, 26, 50, 76, 99, 100]), edges).tolist() == [
        0, 0, 1, 1, 3, 3, 4,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="percentiles"):
        bucket_edges(lengths, (50, 25))
    with pytest.raises(ValueError, match="no lengths"):
        bucket_edges([], (50,))


def test_bucket_soft_targets_representatives_and_defaults() -> None:
    form = make_formulation("bucket", n_classes=3)
    assert isinstance(form, Bucket)
    assert form.percentiles == [50.0, 99.0]
    lengths = np.array([10.0] * 50 + [100.0] * 49 + [1000.0])
    form.prepare(lengths)
    assert form.reps == [10.0, 100.0, 1000.0]
    rows = form.targets([np.array([10.0, 1000.0]), np.array([100.0])])
    assert rows.tolist() == [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]
    # A confident class-1 prediction: point and median are the class's training median.
    est = form.estimates(np.array([[-9.0, 9.0, -9.0]]))[0]
    assert est.point == pytest.approx(100.0)
    assert est.quantile(0.5) == pytest.approx(100.0, rel=0.01)
    with pytest.raises(ValueError, match="percentiles"):
        make_formulation("bucket", n_classes=4)


def test_ordinal_targets_are_shares_above_each_edge() -> None:
    form = make_formulation("ordinal", n_classes=3, percentiles=[50, 90])
    assert isinstance(form, Ordinal)
    form.prepare(np.arange(1, 11, dtype=float))  # edges 5.5 and 9.1
    rows = form.targets([np.array([1.0, 6.0, 10.0, 10.0])])
    assert rows.tolist() == [[0.75, 0.5]]
    assert form.scores(np.array([[0.0, 0.0]]))[0] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=3, max_size=30, unique=True), st.integers(0, 99))
def test_monotone_map_is_strictly_increasing(scores: list[int], seed: int) -> None:
    s = np.array(scores) / 100.0
    rng = np.random.default_rng(seed)
    target = 3 + s + rng.normal(0, 1, size=len(s))
    cal = MonotoneMap().fit(s, target, np.ones(len(s)))
    grid = np.sort(np.concatenate([s, s + 0.01, [-10.0, 10.0]]))
    out = cal(np.unique(np.round(grid, 6)))
    assert np.all(np.diff(out) > 0)


def test_monotone_map_follows_the_isotonic_fit() -> None:
    s = np.array([0.0, 1.0, 2.0, 3.0])
    target = np.array([1.0, 3.0, 2.0, 5.0])  # isotonic: 1, 2.5, 2.5, 5
    out = MonotoneMap().fit(s, target, np.ones(4))(s)
    assert out == pytest.approx([1.0, 2.5, 2.5, 5.0], abs=2e-3)
    assert out[1] < out[2]  # the tie inside the step is broken by the score


@pytest.mark.parametrize(
    ("strategy", "budget", "expected"),
    [
        ("head", 4, [1, 2, 3, 4]),
        ("tail", 4, [7, 8, 9, 10]),
        ("head+tail", 4, [1, 2, 9, 10]),
        ("head+tail", 5, [1, 2, 3, 9, 10]),
        ("head", 20, list(range(1, 11))),
        ("tail", 0, []),
    ],
)
def test_truncate_ids(strategy: str, budget: int, expected: list[int]) -> None:
    assert truncate_ids(list(range(1, 11)), budget, strategy) == expected


class _WordTokenizer:
    """Minimal tokenizer stand-in: one id per whitespace word (plus CLS/SEP)."""

    cls_token_id, sep_token_id = 101, 102

    def __call__(self, texts: list[str], **_kw: object) -> dict:
        return {"input_ids": [[int(w) for w in s.split() if w.isdigit()] for s in texts]}


def test_encode_keeps_the_prefix_and_the_tail() -> None:
    text = " ".join(str(i) for i in range(1, 51))
    ids = encode(_WordTokenizer(), [text], ["7 7 "], max_length=8, strategy="tail")[0]
    assert ids == [101, 7, 7, 47, 48, 49, 50, 102]
    head = encode(_WordTokenizer(), [text], [""], max_length=6, strategy="head")[0]
    assert head == [101, 1, 2, 3, 4, 102]
    with pytest.raises(ValueError, match="truncation"):
        encode(_WordTokenizer(), [text], [""], max_length=6, strategy="middle")


def test_encode_bounds_a_huge_prompt() -> None:
    huge = "12 " * 50_000  # 150,000 characters
    ids = encode(_WordTokenizer(), [huge], [""], max_length=16, strategy="head+tail")[0]
    assert len(ids) == 16


def test_model_prefix() -> None:
    assert model_prefix("gpt-4") == "[gpt-4] "
    assert model_prefix(None) == "[any] "


def test_importing_the_families_does_not_import_torch() -> None:
    code = "import sys, ssjf.predict.finetune; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_heads_start_at_the_average_answer() -> None:
    targets = np.array([4.0, 5.0, 9.0], dtype=np.float32)
    head = torch.nn.Linear(3, 1)
    make_formulation("regression", loss="l1").init_head(head, targets)
    assert float(head.bias.detach()) == pytest.approx(5.0)  # median for L1
    make_formulation("regression", loss="mse").init_head(head, targets)
    assert float(head.bias.detach()) == pytest.approx(6.0)  # mean for MSE
    bucket = make_formulation("bucket", n_classes=3)
    head3 = torch.nn.Linear(3, 3)
    bucket.init_head(head3, np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]], dtype=np.float32))
    probs = torch.softmax(head3.bias.detach(), dim=0).numpy()
    assert probs == pytest.approx([0.5, 0.25, 0.25], abs=2e-3)
