"""Training losses for the fine-tuned length predictors (pure torch functions).

Every loss takes the model's raw outputs for one batch and the batch's targets and
returns a scalar mean. Targets are *soft* where a prompt was answered by several
LLMs: a bucket classifier sees the fraction of answers in each class, an ordinal
model the fraction above each edge. That is exactly the gradient of training on
every (prompt, answer) record, at the cost of one forward pass per prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """L1 or MSE between predicted and true log lengths."""
    import torch.nn.functional as F

    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise ValueError(f"unknown regression loss {kind!r}; use 'l1' or 'mse'")


def soft_cross_entropy(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution over classes (one-hot = the usual CE)."""
    import torch

    return -(probs * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def coral_loss(logits: torch.Tensor, above: torch.Tensor) -> torch.Tensor:
    """Ordinal (CORAL) loss: binary cross-entropy of each cumulative logit ``P(y > edge_k)``.

    ``logits`` and ``above`` have shape ``(batch, K-1)``; ``above[i, k]`` is the
    (possibly fractional) share of example ``i``'s lengths above edge ``k``.
    """
    import torch.nn.functional as F

    per = F.binary_cross_entropy_with_logits(logits, above, reduction="none")
    return per.sum(dim=-1).mean()


def pairwise_loss(
    scores: torch.Tensor,
    targets: torch.Tensor,
    kind: str = "logistic",
    margin: float = 1.0,
    min_gap: float = 0.0,
) -> torch.Tensor:
    """ "Which is longer" over every ordered pair in the batch.

    For each pair with ``targets[i] > targets[j] + min_gap`` the score of ``i``
    should exceed that of ``j``: logistic ``log(1 + exp(-(s_i - s_j)))`` (RankNet)
    or hinge ``max(0, margin - (s_i - s_j))``. Mean over such pairs; zero when
    the batch has none.
    """
    import torch
    import torch.nn.functional as F

    diff_s = scores[:, None] - scores[None, :]
    mask = (targets[:, None] - targets[None, :]) > min_gap
    if not bool(mask.any()):
        return scores.sum() * 0.0
    d = diff_s[mask]
    if kind == "logistic":
        return F.softplus(-d).mean()
    if kind == "margin":
        return torch.clamp(margin - d, min=0.0).mean()
    raise ValueError(f"unknown pairwise loss {kind!r}; use 'logistic' or 'margin'")


def listmle_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): negative log-likelihood of the true order under Plackett-Luce.

    With the batch sorted by decreasing target, ``sum_i logsumexp(s_i..s_n) - s_i``,
    divided by the list length so the scale does not grow with the batch.
    """
    import torch

    order = torch.argsort(targets, descending=True, stable=True)
    s = scores[order]
    # logsumexp over each suffix: reverse cumulative logsumexp.
    suffix = torch.logcumsumexp(s.flip(0), dim=0).flip(0)
    return (suffix - s).sum() / s.numel()
