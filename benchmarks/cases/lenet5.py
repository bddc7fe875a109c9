"""LeNet-5 (classic) on 3,500 real 28x28 MNIST images (mnist5k's training split), batch 128, Adam.

An image goes uint8 -> float -> padded to 32x32 -> normalised with the training split's mean and std, as zoo's
``ImageInput`` does. Each side does it as its users do: the hand-written loop per batch of tensors; Keras on the
whole array once; Lightning as lightning-hydra-template's MNIST datamodule does, per sample: torchvision's
``MNIST`` dataset (read from IDX files written here) with ``Pad(2), ToTensor(), Normalize(mean, std)``. The row
``lightning-dataloader:tensors`` is the lighter setup some users write instead: a ``TensorDataset`` of the decoded
images, normalised per batch. Keras' LeNet-5 is the usual re-implementation (C3 fully connected, its own initial
weights).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import TensorDataset

from benchmarks.common import accelerator, hand_epochs, keras_epochs, lightning_dataloader_epochs, peer, zoo_sides

OVERRIDES = [
    "model=lenet5",
    "model.variant=classic",
    "data=mnist5k",  # 5,000 real MNIST images, bundled: 3,500 in the training split
    "data.normalize=channel",  # what auto resolves to for image nets: one mean/std
    "data.batch_size=128",  # no augmentation: mnist5k has none by default
    "optimizer=adam",
    "logger=none",
]


def hand_net(dm, initial: dict, device: str = "cpu"):
    """LeNet-5 built directly with zoo's initial weights, and the batch preparation a user writes (its constants on
    ``device``)."""
    import torch
    import torch.nn.functional as F

    from zoo.nets.lenet import LeNet5

    spec = dm.spec
    net = LeNet5(list(spec.input_shape), len(spec.class_names), variant="classic")
    net.load_state_dict(initial)
    mean = torch.tensor(spec.pixel_mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.pixel_std, device=device).view(1, -1, 1, 1)

    def prepare(x):
        x = F.pad(x.float(), (2, 2, 2, 2))  # 28 -> 32, black borders (0), as the paper padded MNIST
        return (x / 255.0 - mean) / std

    return net, prepare


def template_mnist(x, y, root: Path, mean: list[float], std: list[float]):
    """lightning-hydra-template's training set: torchvision's ``MNIST`` over IDX files of ``x`` (N x 1 x 28 x 28
    uint8) and ``y`` written under ``root``, each image padded to 32x32 and normalised as a PIL image, per sample."""
    from torchvision import transforms
    from torchvision.datasets import MNIST

    from tests.formats import write_idx  # MNIST's real file format

    images, labels = x[:, 0].numpy(), y.numpy().astype("uint8")
    for split, n in (("train", len(labels)), ("t10k", 1)):  # MNIST wants both splits' files
        write_idx(root / "MNIST" / "raw", split, images[:n], labels[:n])
    transform = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize(mean, std)])
    return MNIST(str(root), train=True, transform=transform)


def keras_net(classes: int):
    """LeNet-5 in Keras on 32x32x1 inputs: tanh, average pooling."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(6, 5, activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Conv2D(120, 5, activation="tanh"),
            layers.Flatten(),
            layers.Dense(84, activation="tanh"),
            layers.Dense(classes),
        ]
    )


def measure(epochs: int, workdir: Path, overrides: tuple[str, ...] = (), device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per epoch of each side, every side on ``device``; ``overrides`` shrink the case (tests)."""
    config = [*OVERRIDES, f"trainer.accelerator={accelerator(device)}", *overrides]
    zoo, dm, initial, x, y = zoo_sides(config, epochs, workdir)
    net, prepare = hand_net(dm, initial, device)
    classes = len(dm.spec.class_names)
    prepared = prepare(x.to(device)).permute(0, 2, 3, 1).cpu().numpy()  # NHWC, as Keras takes images
    mnist = template_mnist(x, y, workdir / "data", dm.spec.pixel_mean, dm.spec.pixel_std)

    return {
        **zoo,
        "hand-written": hand_epochs(net, prepare, x, y, epochs, dm.batch_size, device=device),
        "keras": peer("keras", lambda: keras_epochs(keras_net(classes), prepared, y.numpy(), epochs, dm.batch_size)),
        "lightning-dataloader": lightning_dataloader_epochs(
            hand_net(dm, initial)[0], None, mnist, classes, epochs, dm.batch_size, workdir / "lightning", device=device
        ),
        "lightning-dataloader:tensors": lightning_dataloader_epochs(
            hand_net(dm, initial)[0],
            prepare,
            TensorDataset(x, y),
            classes,
            epochs,
            dm.batch_size,
            workdir / "lightning-tensors",
            device=device,
        ),
    }
