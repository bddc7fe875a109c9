"""One dense layer, ``y = W x + b``: linear regression, and logistic or softmax regression with the right loss."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from zoo.spec import DataSpec


class Linear(nn.Sequential):
    """Flattens the input and applies a single ``nn.Linear`` (the slides' "Dense" layer)."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int) -> Linear:
        return cls(spec.num_features, out_features)

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(OrderedDict(flatten=nn.Flatten(), dense=nn.Linear(in_features, out_features)))
