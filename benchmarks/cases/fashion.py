"""Time to accuracy on real Fashion-MNIST: ``experiment=fashion_fast`` against Keras' own convnet example.

Both sides train on the same 57,000 training images (Fashion-MNIST's 60,000 less zoo's validation split) for the
same number of epochs, and both are scored on the 10,000 test images after every epoch, outside the timed span.
The Keras side is keras.io's "Simple MNIST convnet" (conv 32 -> max pool -> conv 64 -> max pool -> dropout 0.5 ->
dense 10; Adam, batch 128, pixels / 255), the example Keras users start Fashion-MNIST from. The figure compared is
the training time each side needs to first reach the same test accuracy: the best accuracy both reach.

The data comes from Debian's ``dataset-fashion-mnist`` (``make data``); without it the case is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L

from benchmarks.common import Skip, accelerator, peer, zoo_epochs

TITLE = "Fashion-MNIST time to accuracy"  # its section in benchmarks/results.md
EPOCHS = 8  # experiment=fashion_fast's trainer.max_epochs (a test holds them equal)
GOAL = 0.92  # test accuracy experiment=fashion_fast reaches in at most 3 minutes of training on a 2-core CPU
OVERRIDES = ["experiment=fashion_fast", "logger=none"]
FIGURE = "fashion.png"


class TestAccuracy(L.Callback):
    """Test accuracy after each training epoch, on the data module's test split, after the epoch's timer stopped."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        import torch

        x, y = trainer.datamodule.splits["test"]
        pl_module.eval()
        with torch.no_grad():
            right = sum(
                (pl_module(x[i : i + 1000].to(pl_module.device)).argmax(1).cpu() == y[i : i + 1000].cpu()).sum()
                for i in range(0, len(x), 1000)
            )
        pl_module.train()
        self.accuracy.append(int(right) / len(y))


def keras_convnet():
    """keras.io's "Simple MNIST convnet", as written there (valid convolutions, softmax output)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def keras_run(x, y, x_test, y_test, epochs: int, batch_size: int = 128) -> tuple[list[float], list[float]]:
    """The example's ``fit`` (Adam, sparse cross-entropy, batch 128) on pixels / 255: seconds and test accuracy of
    each epoch, the accuracy taken after the epoch's clock stops."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.accuracy: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.start)
            scores = self.model.predict(x_test, batch_size=1000, verbose=0)
            self.accuracy.append(float((scores.argmax(1) == y_test).mean()))

    model = keras_convnet()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    clock = Clock()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[clock])
    return clock.seconds, clock.accuracy


def measure(epochs: int, workdir: Path, overrides: tuple[str, ...] = (), device: str = "cpu") -> dict[str, list[float]]:
    """Seconds of each training epoch and test accuracy after it (``acc:SIDE``), for zoo and Keras."""
    import numpy as np

    from zoo.config import compose_config

    config = [*OVERRIDES, f"trainer.accelerator={accelerator(device)}", *overrides]
    cfg = compose_config(config, workdir / "data")
    folder = Path(cfg.data.data_dir) / "FashionMNIST" / "raw"  # where data=fashion_mnist reads the IDX files
    if not any(folder.glob("train-images-idx3-ubyte*")):
        raise Skip(
            f"no Fashion-MNIST in {folder}; fetch it with: make data (or python scripts/fetch_data.py fashion_mnist)"
        )
    test = TestAccuracy()
    seconds, dm, _ = zoo_epochs(config, epochs, workdir / "zoo", callbacks=[test])
    sides = {"zoo": seconds, "acc:zoo": test.accuracy}
    (x, y), (x_test, y_test) = (tuple(t.cpu() for t in dm.splits[split]) for split in ("train", "test"))

    def pixels(images) -> np.ndarray:  # uint8 NCHW -> float NHWC / 255, as the example prepares them
        return (images.permute(0, 2, 3, 1).numpy() / np.float32(255)).astype("float32")

    def keras_side() -> list[float]:
        keras_seconds, sides["acc:keras"] = keras_run(pixels(x), y.numpy(), pixels(x_test), y_test.numpy(), epochs)
        return keras_seconds

    sides["keras"] = peer("keras", keras_side)
    return sides


def time_to(accuracy: float, seconds: list[float], accuracies: list[float]) -> float | None:
    """Training seconds until the first epoch whose test accuracy reaches ``accuracy`` (None: never)."""
    spent = 0.0
    for s, a in zip(seconds, accuracies, strict=True):
        spent += s
        if a >= accuracy:
            return spent
    return None


def fastest(rounds: list[dict[str, list[float]]], side: str) -> dict[str, list[float]]:
    """The round in which ``side`` trained fastest (its accuracies are the same in every round: same seed)."""
    return min((r for r in rounds if r.get(side)), key=lambda r: sum(r[side]), default={})


def report(rounds: list[dict[str, list[float]]], folder: Path) -> tuple[list[str], str]:
    """The section's table lines and last line, and the accuracy-against-time figure written into ``folder``."""
    runs = {side: fastest(rounds, side) for side in ("zoo", "keras")}
    runs = {side: (r[side], r[f"acc:{side}"]) for side, r in runs.items() if r}
    common = min(max(acc) for _, acc in runs.values())  # the best accuracy every side reaches
    lines = [
        "| side | epochs | s/epoch | best test/acc | s to 0.92 | s to the common accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for side, (seconds, acc) in runs.items():
        to_goal, to_common = time_to(GOAL, seconds, acc), time_to(common, seconds, acc)
        lines.append(
            f"| {side} | {len(seconds)} | {sum(seconds) / len(seconds):.1f} | {max(acc):.4f} | "
            f"{'-' if to_goal is None else f'{to_goal:.0f}'} | {to_common:.0f} |"
        )
    draw(runs, common, folder / FIGURE)
    lines += ["", f"Test accuracy against training seconds, a point per epoch: `benchmarks/{FIGURE}`."]
    if len(runs) < 2:
        return lines, f"fashion: zoo reaches {max(runs['zoo'][1]):.4f} (keras not installed: pip install .[bench])"
    ratio = time_to(common, *runs["keras"]) / time_to(common, *runs["zoo"])
    return lines, f"keras/zoo time to test/acc {common:.4f}: {ratio:.2f}"


def draw(runs: dict[str, tuple[list[float], list[float]]], common: float, path: Path) -> None:
    """Test accuracy against training seconds, a point per epoch, for each side; the goal and common accuracy."""
    import itertools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.plots import saved

    fig, ax = plt.subplots(figsize=(6, 4))
    for side, (seconds, acc) in runs.items():
        ax.plot(list(itertools.accumulate(seconds)), acc, marker="o", label=side)
    ax.axhline(GOAL, color="gray", linestyle=":", label=f"goal {GOAL}")
    ax.axhline(common, color="gray", linestyle="--", label=f"common accuracy {common:.4f}")
    ax.set(xlabel="training seconds", ylabel="test accuracy", title="Fashion-MNIST: accuracy against time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    saved(fig, path)
