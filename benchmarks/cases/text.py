"""Text case for ``benchmarks/run.py text``: seconds per training epoch of ``text_avgpool`` and an LSTM (``rnn``)
on 14,000 generated reviews of at most 16 tokens, batch 64, Adam (lr 1e-3, cross-entropy over the two classes).

Every side trains the same net from the same initial weights on the same token tensors: zoo; the hand-written loop;
Keras (torch backend) with ``Embedding(mask_zero=True)`` followed by ``GlobalAveragePooling1D`` and two ``Dense``
layers, or by an ``LSTM`` and a ``Dense`` layer (the courses' exemplos 10-11 and their recurrent version: the mask
keeps padding out of the mean and out of the final state, as zoo's nets do); and Lightning fed by a per-sample
``DataLoader`` over a ``TensorDataset`` of the ids.

    python -c "from pathlib import Path; from benchmarks.cases.text import measure; print(measure(4, Path('/tmp/b')))"
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import (
    accelerator,
    hand_epochs,
    keras_epochs,
    lightning_dataloader_epochs,
    peer,
    without_graphs,
    zoo_epochs,
)

# 20,000 generated reviews: 14,000 training texts of at most 16 tokens, batch 64
DATA = ["data=text_synth", "data.count=20000", "data.batch_size=64", "optimizer=adam", "model.loss=cross_entropy"]
MODELS = {"text_avgpool": ["model=text_avgpool"], "lstm": ["model=rnn", "model.cell=lstm"]}


def keras_net(name: str, initial: dict, max_length: int):
    """zoo's ``name`` net (one hidden layer, one LSTM layer: the benchmark's sizes) in Keras, with the same initial
    weights: a Dense kernel is the transposed Linear weight; Keras' LSTM keeps torch's gate order (input, forget,
    cell, output) with one bias, the sum of torch's two. Token id 0 is the padding that ``mask_zero`` masks."""
    import keras
    from keras import layers

    w = {k: v.numpy() for k, v in initial.items()}
    vocab, dim = w["embedding.weight"].shape
    if name == "text_avgpool":
        body = [layers.GlobalAveragePooling1D(), layers.Dense(len(w["head.0.bias"]), activation="relu")]
        weights = [[w["head.0.weight"].T, w["head.0.bias"]], [w["head.3.weight"].T, w["head.3.bias"]]]
        out = len(w["head.3.bias"])
    else:
        body = [layers.LSTM(w["rnn.weight_hh_l0"].shape[1])]
        lstm = [w["rnn.weight_ih_l0"].T, w["rnn.weight_hh_l0"].T, w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"]]
        weights = [lstm, [w["head.weight"].T, w["head.bias"]]]
        out = len(w["head.bias"])
    model = keras.Sequential(
        [keras.Input((max_length,), dtype="int64"), layers.Embedding(vocab, dim, mask_zero=True), *body]
        + [layers.Dense(out)]
    )
    weights = [[w["embedding.weight"]], *weights]
    for layer, values in zip([layer for layer in model.layers if layer.weights], weights, strict=True):
        layer.set_weights(values)
    return model


def measure(epochs: int, workdir: Path, overrides: tuple[str, ...] = (), device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per training epoch on ``device``, ``{"<side>:<model>": [...]}``; ``overrides`` shrink the case."""
    results: dict[str, list[float]] = {}
    for name, model in MODELS.items():
        config = [*model, *DATA, f"trainer.accelerator={accelerator(device)}", "logger=none", *overrides]
        results.update(sides(name, config, epochs, Path(workdir) / name, device))
    return results


def sides(name: str, config: list[str], epochs: int, workdir: Path, device: str) -> dict[str, list[float]]:
    """Every side's seconds per epoch for one model."""
    from torch.utils.data import TensorDataset

    from zoo.config import compose_config
    from zoo.run import build_task

    zoo, dm, initial, tested = zoo_epochs(config, epochs, workdir / "zoo", test=True)
    if dm.spec.pad_id != 0:
        raise ValueError(f"the Keras side masks token id 0 but this vocabulary pads with {dm.spec.pad_id}")
    cfg = compose_config(config, workdir / "hand")

    def net():
        """The same class and sizes as zoo's net, with zoo's initial weights."""
        fresh = build_task(cfg, dm.spec).net
        fresh.load_state_dict(initial)
        return fresh.train()

    x, y = (t.cpu() for t in dm.splits["train"])
    batch, classes = dm.batch_size, len(dm.spec.class_names)
    return {
        f"zoo:{name}": zoo,
        **without_graphs(config, epochs, workdir, tested, name),
        f"hand-written:{name}": hand_epochs(net(), None, x, y, epochs, batch, device=device),
        f"keras:{name}": peer(
            "keras", lambda: keras_epochs(keras_net(name, initial, x.shape[1]), x.numpy(), y.numpy(), epochs, batch)
        ),
        f"lightning-dataloader:{name}": lightning_dataloader_epochs(
            net(), None, TensorDataset(x, y), classes, epochs, batch, workdir / "lightning", device=device
        ),
    }
