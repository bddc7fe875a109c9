"""Recurrent nets on token ids: an embedding, then a simple RNN, LSTM or GRU (stacked, optionally bidirectional),
with the final hidden state read out by a linear head. Sequences are packed by their true lengths, so padding
never reaches the final state whatever side it sits on."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from zoo.errors import ZooError

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNN(nn.Module):
    """ids ``[B, L]`` -> embedding -> ``cell`` x ``layers`` -> last state (both directions) -> logits."""

    def __init__(
        self,
        vocab_size: int,
        out_features: int,
        pad_id: int = 0,
        cell: str = "lstm",
        embedding_dim: int = 32,
        hidden_size: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ZooError(f"model.cell={cell!r} is not valid; choose one of {', '.join(CELLS)}")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ZooError(f"model.layers={layers!r} must be a positive integer")
        self.pad_id, self.cell = pad_id, cell
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](
            embedding_dim,
            hidden_size,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,  # between stacked layers only
        )
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.directions, out_features)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != self.pad_id).sum(1).clamp(min=1).cpu()  # an all-padding row still gets one step
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if self.cell == "lstm" else state  # (h, c) for LSTM
        last = h[-self.directions :]  # the top layer: forward (and backward) final states, [dirs, B, H]
        return self.head(self.dropout(torch.cat(list(last), dim=1)))
