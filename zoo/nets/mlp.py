"""The multi-layer perceptron: dense layers with an activation, optional batch norm and dropout.

Give ``hidden`` (a width per layer, all sharing one activation/dropout/batch-norm setting) or ``layers``, a list
of per-layer dicts in the spirit of Keras' Sequential model::

    layers:
      - {units: 64, activation: relu, batch_norm: true}
      - {units: 32, activation: tanh, dropout: 0.2}

The output layer is always added, sized from the data.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from torch import nn

from zoo.errors import ZooError
from zoo.nets.fast_ops import Dropout, Tanh
from zoo.nets.width_rules import widths_for

if TYPE_CHECKING:
    from zoo.spec import DataSpec

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": Tanh,  # nn.Tanh, faster on AVX-512 CPUs (fast_ops)
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
LAYER_KEYS = {"units", "activation", "dropout", "batch_norm"}


class MLP(nn.Sequential):
    """Flatten, then ``[dense -> batch norm -> activation -> dropout] * len(hidden)``, then a dense output layer."""

    @classmethod
    def from_spec(
        cls, spec: DataSpec, out_features: int, hidden: Any = (128,), width_alpha: float = 2.0, **settings: Any
    ) -> MLP:
        """``hidden`` may name width rules (``zoo.nets.width_rules``); ``width_alpha`` is the hagan rule's alpha."""
        return cls(spec.num_features, out_features, widths_for(spec, out_features, hidden, width_alpha), **settings)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[int] | tuple[int, ...] = (128,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        layers: list[dict[str, Any]] | None = None,
    ) -> None:
        specs = layers or [
            {"units": w, "activation": activation, "dropout": dropout, "batch_norm": batch_norm} for w in hidden
        ]
        blocks: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        width = in_features
        for i, spec in enumerate(specs, start=1):
            spec = _check_layer(spec, i)
            blocks[f"dense{i}"] = nn.Linear(width, spec["units"])
            if spec.get("batch_norm", False):  # before the activation, as the slides recommend
                blocks[f"bn{i}"] = nn.BatchNorm1d(spec["units"])
            blocks[f"act{i}"] = ACTIVATIONS[spec.get("activation", "relu")]()
            if spec.get("dropout", 0.0) > 0:
                blocks[f"dropout{i}"] = Dropout(spec["dropout"])
            width = spec["units"]
        blocks["output"] = nn.Linear(width, out_features)
        super().__init__(blocks)


def _check_layer(spec: dict[str, Any], i: int) -> dict[str, Any]:
    unknown = set(spec) - LAYER_KEYS
    if unknown:
        raise ZooError(f"MLP layer {i}: unknown keys {sorted(unknown)}; a layer takes {sorted(LAYER_KEYS)}")
    units = spec.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ZooError(f"MLP layer {i}: units={units!r}; give a positive integer (or a width rule in model.net.hidden)")
    act = spec.get("activation", "relu")
    if act not in ACTIVATIONS:
        raise ZooError(f"MLP layer {i}: unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")
    if not 0.0 <= spec.get("dropout", 0.0) < 1.0:
        raise ZooError(f"MLP layer {i}: dropout={spec['dropout']} must lie in [0, 1)")
    return spec
