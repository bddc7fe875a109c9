"""The default run written as a plain Keras 3 script (torch backend): a Sequential MLP 64-128-10 on scikit-learn's
digits (the same 80/20 split zoo takes, 10% of the training part for validation), ``fit`` for 30 epochs,
``evaluate`` on the test split, one learning-curve PNG. ``benchmarks/startup.py`` times it as a whole process beside
``python scripts/train.py``.

    python benchmarks/peers/keras_digits.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main(out: Path) -> None:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=30, batch_size=64, validation_split=0.1, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("loss", "val_loss"):
        ax.plot(history.history[key], label=key)
    ax.set(xlabel="epoch", ylabel="loss")
    ax.legend()
    fig.savefig(out / "learning_curves.png", dpi=100)
    print(f"test accuracy {accuracy:.4f}, test loss {loss:.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "keras_digits"))
