"""A net of your own, given from Python (``zoo.fit(net=my_module, data=...)``): any ``torch.nn.Module``, trained by
zoo's tasks like its own nets. The module stays yours: training changes it in place, as Keras' ``fit`` does.

The model config holds a token for the module (``model=net``); :func:`give` registers it under that token in this
process, and :meth:`GivenNet.from_spec` hands it to the task once it is known to fit the data: it runs on a batch
of two of the data's inputs and gives the outputs the task needs. A checkpoint keeps the weights and the class's
name; loading it needs the same module again (``zoo.load(path, net=MyNet(...))``), which is given the same way.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.spec import DataSpec

_GIVEN: dict[str, nn.Module] = {}


def give(module: nn.Module, token: str | None = None) -> str:
    """Register ``module`` for this process; returns its token (a new one unless ``token`` is given)."""
    if not isinstance(module, nn.Module):
        raise ZooError(f"net: a {type(module).__name__} is not a torch.nn.Module; give a module (Sequential, Model...)")
    token = token or uuid.uuid4().hex
    _GIVEN[token] = module
    return token


def class_name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


class GivenNet:
    """Not a module itself: its ``from_spec`` returns the module given for ``token``."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, token: str | None = None, name: str = "") -> nn.Module:
        if not token:
            raise ZooError(
                "model=net takes a torch.nn.Module of your own, from Python: zoo.fit(net=my_module, data=...)"
            )
        module = _GIVEN.get(token)
        if module is None:
            short = name.rsplit(".", 1)[-1] or "MyNet"
            raise ZooError(
                f"model=net: this run trained a net of your own ({name}); give it again: "
                f"zoo.load(PATH, net={short}(...)) with the same class and arguments"
            )
        check_fits(module, spec, out_features, name.rsplit(".", 1)[-1])
        return module


def example_input(spec: DataSpec, rows: int = 2) -> torch.Tensor:
    """A batch of ``rows`` inputs as a net receives them (images normalised to float by the task's first layer)."""
    if spec.is_text:
        return torch.ones(rows, *spec.input_shape, dtype=torch.long)  # id 1: a real token, not padding
    return torch.zeros(rows, *spec.input_shape)


def check_fits(module: nn.Module, spec: DataSpec, out_features: int, name: str) -> None:
    """Run ``module`` once on two of the data's inputs (in eval mode, without gradients: nothing it keeps, such as
    batch-norm statistics, changes; lazy layers take their sizes from the data); refuse it in one line when the
    forward fails or the outputs are not ``[2, out_features]``."""
    x = example_input(spec)
    modes = {m: m.training for m in module.modules()}
    shape = f"{str(x.dtype).replace('torch.', '')} {list(x.shape)}"
    try:
        module.eval()
        with torch.no_grad():
            out = module(x)
    except Exception as err:  # noqa: BLE001 - whatever the user's forward raises, named in one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ZooError(
            f"net={name}: its forward fails on data={spec.name}'s inputs, {shape} ({first}); make its first layer "
            "take that shape (nn.Flatten() then nn.LazyLinear(units) takes any)"
        ) from None
    finally:
        for m, training in modes.items():
            m.training = training
    got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    need = [len(x), out_features]
    if got != need:
        hint = "; two outputs for two classes need model.loss=cross_entropy" if got == [len(x), 2] else ""
        raise ZooError(
            f"net={name} gives outputs {got} for {len(x)} inputs but data={spec.name} needs {need} "
            f"({_what(spec, out_features)}); make its last layer give {out_features}, e.g. "
            f"nn.LazyLinear({out_features}){hint}"
        )


def _what(spec: DataSpec, out_features: int) -> str:
    if spec.num_targets:
        return "one value per target"
    if out_features == 1:
        return "one logit for two classes"
    return "one score per class"


def settings(module: nn.Module) -> dict[str, Any]:
    """The model config's ``net`` block for ``module``, registered now."""
    return {"token": give(module), "name": class_name(module)}
