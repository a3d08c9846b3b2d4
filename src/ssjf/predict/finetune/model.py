"""Encoder + pooling + head, with a split point for training only the top layers.

On a CPU, fine-tuning every layer of even MiniLM-L6 on a few thousand prompts
takes most of an hour. Freezing the embeddings and lower layers and training the
top ``train_layers`` layers (plus the head) lets the trainer run the frozen part
once per prompt and cache its hidden states; each step then costs only the top
layers' forward and backward. The split needs a BERT-like encoder
(``.embeddings`` + ``.encoder.layer``, e.g. BERT, MiniLM, RoBERTa); other
architectures train with frozen layers but without the cache.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn


class CoralHead(nn.Module):
    """CORAL: one shared projection plus K-1 ordered biases -> cumulative logits."""

    def __init__(self, hidden: int, n_edges: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, 1, bias=False)
        # Decreasing initial biases: P(y > edge_k) starts out falling with k.
        self.bias = nn.Parameter(torch.linspace(1.0, -1.0, n_edges))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.bias


def is_bert_like(encoder: Any) -> bool:
    """Whether the encoder exposes ``embeddings`` and ``encoder.layer`` (splittable)."""
    return hasattr(encoder, "embeddings") and hasattr(getattr(encoder, "encoder", None), "layer")


def num_layers(encoder: Any) -> int:
    """Transformer layers in the encoder (from its config)."""
    return int(encoder.config.num_hidden_layers)


class LengthModel(nn.Module):
    """Mean-pooled encoder states -> dropout -> formulation head."""

    def __init__(self, encoder: nn.Module, head: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.dropout = nn.Dropout(dropout)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over real (unpadded) tokens (all-MiniLM-L6-v2's own pooling)."""
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(self.pool(hidden, attention_mask)))

    # ---------------------------------------------------------- split path
    def freeze_below(self, cut: int) -> None:
        """Freeze embeddings and layers ``< cut`` (the head and upper layers stay trainable)."""
        enc: Any = self.encoder
        if not is_bert_like(enc):
            # Best effort for other encoders: freeze everything but the last layers by name.
            for name, p in enc.named_parameters():
                p.requires_grad = _layer_index(name) is not None and _layer_index(name) >= cut  # type: ignore[operator]
            return
        for p in enc.embeddings.parameters():
            p.requires_grad = False
        for i, layer in enumerate(enc.encoder.layer):
            for p in layer.parameters():
                p.requires_grad = i >= cut

    def lower(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cut: int
    ) -> torch.Tensor:
        """Hidden states after the embeddings and layers ``< cut`` (BERT-like only)."""
        enc: Any = self.encoder
        hidden = enc.embeddings(input_ids=input_ids)
        return self._layers(hidden, attention_mask, enc.encoder.layer[:cut])

    def upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor, cut: int) -> torch.Tensor:
        """Head outputs from cached hidden states at layer ``cut``."""
        enc: Any = self.encoder
        hidden = self._layers(hidden, attention_mask, enc.encoder.layer[cut:])
        return self.head(self.dropout(self.pool(hidden, attention_mask)))

    def _layers(self, hidden: torch.Tensor, mask: torch.Tensor, layers: Any) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        enc: Any = self.encoder
        ext = create_bidirectional_mask(
            config=enc.config, inputs_embeds=hidden, attention_mask=mask
        )
        for layer in layers:
            out = layer(hidden, ext)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for a, b in itertools.pairwise(parts):
        if a in ("layer", "layers", "h", "block") and b.isdigit():
            return int(b)
    return None
