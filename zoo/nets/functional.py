"""Keras' Sequential and Functional ways of writing a net, in PyTorch (the model-selection course's "como funciona
o Keras API"); the third way, subclassing, is a plain ``nn.Module``.

- ``Sequential([...])``: layers in a list, ``.add(layer)`` as in Keras; lazy layers (``nn.LazyLinear``,
  ``nn.LazyConv2d``) take their input sizes from the data, as Keras infers them.
- ``Input(shape)`` and ``Model(inputs, outputs)``: a layer called on an input returns a tensor, and the model is the
  graph from inputs to outputs (several branches, skips, ``torch.cat``...)::

      inputs = Input(shape=(64,))
      x = nn.ReLU()(nn.LazyLinear(64)(inputs))
      x = nn.ReLU()(nn.LazyLinear(64)(x)) + x
      model = Model(inputs, nn.LazyLinear(10)(x))

  While a graph is being written, the tensors are a real example batch (two rows of zeros), so every layer runs
  once and lazy layers take their sizes; each call is recorded and ``Model.forward`` replays the calls on new
  inputs. Layers run in eval mode without gradients while they are recorded, so batch-norm statistics stay as they
  were. Reshape with layers (``nn.Flatten``), not with the example's own sizes (``x.view(2, -1)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from zoo.errors import ZooError

EXAMPLE_ROWS = 2


class Sequential(nn.Sequential):
    """``nn.Sequential`` written as Keras writes it: ``Sequential([layer, ...])`` and ``model.add(layer)``."""

    def __init__(self, layers: Iterable[nn.Module] = (), *more: nn.Module) -> None:
        given = [*(layers if isinstance(layers, Iterable) else [layers]), *more]
        super().__init__(*(layer_of(layer, i) for i, layer in enumerate(given)))

    def add(self, layer: nn.Module) -> Sequential:
        return self.append(layer_of(layer, len(self)))


def layer_of(layer: Any, position: int) -> nn.Module:
    """``layer`` where it is a torch module; anything else (a layer's name, a class not called) is one line."""
    if isinstance(layer, nn.Module):
        return layer
    hint = f"; call it: {layer.__name__}(...)" if isinstance(layer, type) and issubclass(layer, nn.Module) else ""
    raise ZooError(f"Sequential: layer {position} is {layer!r}, not a torch module (nn.Linear(...), nn.ReLU()){hint}")


class Node:
    """One value of a graph: an input (``index``), a layer's output or a function's result."""

    def __init__(self, call: Any = None, args: Any = (), kwargs: Any = None, index: int = -1) -> None:
        self.call, self.args, self.kwargs, self.index = call, args, kwargs or {}, index

    def parents(self) -> list[Node]:
        leaves, _ = tree_flatten((self.args, self.kwargs))
        return [leaf for leaf in leaves if isinstance(leaf, Node)]


class Symbol(torch.Tensor):
    """A tensor of a graph being written: the example values, and the node that computes them."""

    node: Node | None = None

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        if _Recorder.depth or not any(isinstance(a, Symbol) and a.node for a in tree_flatten((args, kwargs))[0]):
            return out  # inside a layer (recorded as one call), or no graph value among the arguments
        node = Node(func, *_nodes((args, kwargs)))
        return tree_map(lambda t: _symbol(t, node) if isinstance(t, torch.Tensor) else t, out)


def _symbol(t: torch.Tensor, node: Node) -> Symbol:
    symbol = t.detach().as_subclass(Symbol)
    symbol.node = node
    return symbol


def _nodes(structure: Any) -> Any:
    """``structure`` with each graph tensor replaced by its node."""
    return tree_map(lambda a: a.node if isinstance(a, Symbol) and a.node else a, structure)


class _Recorder:
    """Global module hooks, on while a graph is being written: a layer called on graph tensors becomes one node
    (the calls inside it are not recorded), run in eval mode without gradients."""

    depth = 0
    handles: list[Any] = []
    saved: list[tuple[dict[nn.Module, bool], bool]] = []

    @classmethod
    def start(cls) -> None:
        if not cls.handles:
            register = nn.modules.module
            cls.handles = [
                register.register_module_forward_pre_hook(cls.pre),
                register.register_module_forward_hook(cls.post),
            ]

    @classmethod
    def stop(cls) -> None:
        for handle in cls.handles:
            handle.remove()
        cls.handles = []

    @staticmethod
    def _records(args: Any) -> bool:
        return any(isinstance(a, Symbol) and a.node for a in tree_flatten(args)[0])

    @classmethod
    def pre(cls, module: nn.Module, args: Any) -> None:
        if cls.depth or cls._records(args):
            if cls.depth == 0:
                cls.saved.append(({m: m.training for m in module.modules()}, torch.is_grad_enabled()))
                module.eval()
                torch.set_grad_enabled(False)
            cls.depth += 1

    @classmethod
    def post(cls, module: nn.Module, args: Any, out: Any) -> Any:
        if not cls.depth:
            return None
        cls.depth -= 1
        if cls.depth:
            return None
        modes, grad = cls.saved.pop()
        for m, training in modes.items():
            m.training = training
        torch.set_grad_enabled(grad)
        node = Node(module, _nodes(args))
        return tree_map(lambda t: _symbol(t, node) if isinstance(t, torch.Tensor) else t, out)


def Input(shape: Iterable[int], dtype: torch.dtype = torch.float32) -> Symbol:  # noqa: N802 - Keras' name
    """A graph's input: one sample's ``shape`` (no batch dimension), as Keras' ``Input(shape=...)``."""
    _Recorder.start()
    return _symbol(torch.zeros(EXAMPLE_ROWS, *shape, dtype=dtype), Node(index=0))


class Model(nn.Module):
    """The layers and functions between ``inputs`` and ``outputs`` (graph tensors from :func:`Input`), as a module
    whose ``forward`` computes them on new inputs."""

    def __init__(self, inputs: Symbol | list[Symbol], outputs: Symbol) -> None:
        super().__init__()
        _Recorder.stop()
        inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
        if not all(isinstance(t, Symbol) and t.node for t in [*inputs, outputs]):
            raise ZooError("Model(inputs, outputs) takes tensors of one graph: from zoo.Input(shape) through layers")
        self.input_nodes = [t.node for t in inputs]
        for i, node in enumerate(self.input_nodes):
            node.index = i
        self.steps = _order(outputs.node)
        missing = [n for n in self.steps if n.call is None and n not in self.input_nodes]
        if missing:
            raise ZooError("Model(inputs, outputs): the outputs depend on an Input that is not among the inputs")
        self.output_node = outputs.node
        layers = [n.call for n in self.steps if isinstance(n.call, nn.Module)]
        self.layers = nn.ModuleList(dict.fromkeys(layers))  # each layer once, in the order first called

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        values: dict[Node, Any] = {node: xs[node.index] for node in self.input_nodes}
        for node in self.steps:
            if node.call is not None:
                args, kwargs = tree_map(lambda a: values[a] if isinstance(a, Node) else a, (node.args, node.kwargs))
                values[node] = node.call(*args, **kwargs)
        return values[self.output_node]


def _order(output: Node) -> list[Node]:
    """The nodes ``output`` depends on, each after its parents."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent in reversed(node.parents()) if id(parent) not in seen)
    return order
