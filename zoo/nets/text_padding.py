"""Padding on either side of a text: ``data.padding_side=right`` puts it after the tokens, ``left`` before them (the
slides' way, Keras' ``pad_sequences``). Nets that read positions in order (a recurrent net's last state, a
pretrained encoder's position embeddings and its [CLS] at position 0) move each row's tokens ahead of its padding
first, so both sides give them the same input; averages simply leave padding out wherever it sits."""

from __future__ import annotations

import torch


def tokens_first(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``ids [B, L]`` with each row's tokens first, in their order, then its padding: what right padding gives.
    Rows are sorted by (is padding, position), keys that are all distinct, so any sort gives this order (ONNX has no
    stable sort); right-padded rows come back unchanged."""
    padding = ids == pad_id
    positions = torch.arange(ids.shape[1], device=ids.device)
    return ids.gather(1, torch.argsort(padding * ids.shape[1] + positions, dim=1))
