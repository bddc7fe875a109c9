"""Introdução ao Deep Learning com R, exemplos 10-11: word embeddings averaged over the text (Keras' Embedding +
GlobalAveragePooling1D), then a small dense head. Padding never counts in the average; ``one_hot`` runs the same
maths the slides' costly way, one-hot rows times the embedding matrix; ``pooling=flatten`` keeps every position
(exemplo 10). The mean is the same whichever side the padding is on (``data.padding_side``); flatten sees positions,
so with left padding a text's last word always sits at the last position, with right padding its first word at the
first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.nets.fast_ops import Dropout
from zoo.nets.width_rules import widths_for

if TYPE_CHECKING:
    from zoo.spec import DataSpec


class TextAvgPool(nn.Module):
    """ids ``[B, L]`` -> embeddings ``[B, L, D]`` -> masked mean (or flatten) -> [dense + ReLU]... -> logits."""

    POOLINGS = ("mean", "flatten")

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, hidden: Any = (24,), **settings: Any) -> TextAvgPool:
        widths = widths_for(spec, out_features, hidden)
        return cls(spec.vocab_size, out_features, spec.pad_id, spec.input_shape[0], hidden=widths, **settings)

    def __init__(
        self,
        vocab_size: int,
        out_features: int,
        pad_id: int = 0,
        max_length: int | None = None,
        embedding_dim: int = 16,
        hidden: list[int] = (24,),
        dropout: float = 0.0,
        one_hot: bool = False,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ZooError(f"model.net.pooling={pooling!r} is not valid; choose one of {', '.join(self.POOLINGS)}")
        if pooling == "flatten" and not max_length:
            raise ZooError("model.net.pooling=flatten needs max_length, the texts' length (from_spec gives the data's)")
        self.pad_id, self.one_hot, self.pooling = pad_id, one_hot, pooling
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        width = embedding_dim * (max_length if pooling == "flatten" else 1)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), Dropout(dropout)]
            width = size
        self.head = nn.Sequential(*layers, nn.Linear(width, out_features))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.one_hot:  # [B, L, V] mostly zeros: the cost the slides warn about; the result is the same lookup
            return F.one_hot(ids, self.embedding.num_embeddings).float() @ self.embedding.weight
        return self.embedding(ids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).unsqueeze(-1).float()
        vectors = self.embed(ids) * mask  # padding contributes zeros...
        if self.pooling == "flatten":
            return self.head(vectors.flatten(1))
        pooled = vectors.sum(1) / mask.sum(1).clamp(min=1)  # ...and is not counted in the mean
        return self.head(pooled)
