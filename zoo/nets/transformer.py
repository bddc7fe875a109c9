"""A pretrained Hugging Face encoder (BERT-like: MiniLM, DistilBERT...) with a classification head, from a hub name
or a local folder. ``features`` is the encoder and ``head`` the new classifier, so ``zoo.callbacks.Finetune``
freezes or fine-tunes it like a timm backbone. The data is tokenized with the model's own tokenizer (the model
config's ``tokenizer`` block), so ids mean what the encoder learnt. Left-padded texts (``data.padding_side=left``) are
moved to the right first: the encoder's positions then start at its [CLS], as in its pretraining."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo.config import installed_copy
from zoo.errors import ZooError
from zoo.nets.fast_ops import Dropout
from zoo.nets.text_padding import tokens_first

if TYPE_CHECKING:
    from zoo.spec import DataSpec

POOLINGS = ("mean", "cls")


class Transformer(nn.Module):
    """ids ``[B, L]`` -> encoder (attention mask = not padding) -> mean of the real tokens (or [CLS]) -> logits."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> Transformer:
        return cls(spec.vocab_size, out_features, pad_id=spec.pad_id, **settings)

    def __init__(
        self,
        vocab_size: int,
        out_features: int,
        backbone: str,
        pad_id: int = 0,
        pooling: str = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ZooError("model=transformer needs transformers: pip install 'zoo[text]'") from None

        if pooling not in POOLINGS:
            raise ZooError(f"model.net.pooling={pooling!r} is not valid; choose one of {', '.join(POOLINGS)}")
        hf_logging.set_verbosity_error()  # "some weights were not used" for a sentence model's pooler is expected
        hf_logging.disable_progress_bar()  # a bar for loading a local file's weights says nothing
        try:
            self.features = AutoModel.from_pretrained(installed_copy(backbone))
        except (OSError, ValueError) as err:
            raise ZooError(
                f"model.backbone={backbone!r}: cannot load it ({str(err).splitlines()[0]}); give a hub name (online "
                "or cached) or a local folder with config.json and the weights"
            ) from None
        self.features.train()  # from_pretrained leaves the encoder in eval mode: dropout off while fine-tuning
        rows = self.features.get_input_embeddings().num_embeddings
        if vocab_size > rows:
            raise ZooError(
                f"model.backbone={backbone!r} knows {rows} token ids but the data has {vocab_size}: the texts were "
                "tokenized by another tokenizer; keep the model's tokenizer block (data.tokenizer.kind=pretrained)"
            )
        self.pad_id, self.pooling = pad_id, pooling
        self.head = nn.Sequential(Dropout(dropout), nn.Linear(self.features.config.hidden_size, out_features))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = tokens_first(ids, self.pad_id)  # [CLS] at position 0 whichever side the padding was on
        mask = ids != self.pad_id
        hidden = self.features(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return self.head(hidden[:, 0])
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * weights).sum(1) / weights.sum(1).clamp(min=1))
