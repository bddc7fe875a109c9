"""MLP 784-128-10 on 60,000 generated samples, batch 128, Adam: the case where per-step overhead shows most."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import TensorDataset

from benchmarks.common import accelerator, hand_epochs, keras_epochs, lightning_dataloader_epochs, peer, zoo_sides

OVERRIDES = [
    "model=mlp",
    "model.net.hidden=[128]",
    "data=synthetic",
    "data.n_samples=66667",  # 60,000 in the training split
    "data.test_fraction=0.05",
    "data.val_fraction=0.05",
    "data.batch_size=128",
    "optimizer=adam",
    "logger=none",
]


def hand_net(initial: dict):
    """nn.Sequential MLP 784-128-10, loaded with zoo's initial weights."""
    from torch import nn

    features = initial["dense1.weight"].shape[1]
    net = nn.Sequential(nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, 10))
    net.load_state_dict({k.replace("dense1", "1").replace("output", "3"): v for k, v in initial.items()})
    return net


def keras_net(initial: dict):
    """The same MLP in Keras, with the same initial weights (a Dense kernel is the transposed Linear weight)."""
    import keras

    features = initial["dense1.weight"].shape[1]
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    )
    numpy = {k: v.numpy() for k, v in initial.items()}
    model.layers[0].set_weights([numpy["dense1.weight"].T, numpy["dense1.bias"]])
    model.layers[1].set_weights([numpy["output.weight"].T, numpy["output.bias"]])
    return model


def measure(epochs: int, workdir: Path, overrides: tuple[str, ...] = (), device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per epoch of each side, every side on ``device``; ``overrides`` shrink the case (tests)."""
    config = [*OVERRIDES, f"trainer.accelerator={accelerator(device)}", *overrides]
    zoo, dm, initial, x, y = zoo_sides(config, epochs, workdir)
    classes = len(dm.spec.class_names)
    return {
        **zoo,
        "hand-written": hand_epochs(hand_net(initial), None, x, y, epochs, dm.batch_size, device=device),
        "keras": peer("keras", lambda: keras_epochs(keras_net(initial), x.numpy(), y.numpy(), epochs, dm.batch_size)),
        "lightning-dataloader": lightning_dataloader_epochs(
            hand_net(initial),
            None,
            TensorDataset(x, y),
            classes,
            epochs,
            dm.batch_size,
            workdir / "lightning",
            device=device,
        ),
    }
