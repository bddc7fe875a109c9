"""Seconds per training epoch: zoo against a hand-written PyTorch loop, measured side by side in one process.

    python benchmarks/run.py mlp          # MLP 784-128-10, 60,000 generated samples, batch 128, Adam, CPU
    python benchmarks/run.py lenet5       # LeNet-5 (classic), 3,500 real 28x28 MNIST images, batch 128, Adam, CPU
    python benchmarks/run.py lenet5 mlp   # both; the last line is the first case's ratio

Both sides train the same net (same initial weights), on the same tensors, with the same optimizer and batch size.
Each case brings its hand-written side: the net, built directly and loaded with the zoo net's initial weights, and
what a plain loop does to a batch before the forward pass (for images: uint8 -> float, pad 28x28 to LeNet-5's 32x32
with black borders, normalise with the training split's mean and std, as zoo's ``ImageInput`` does).
zoo runs as a user runs it (composed config, Lightning Trainer, progress bar, model summary, checkpoint callback);
the timed span is the training part of each epoch (first to last batch), validation and checkpoint writing excluded
on both sides. Epoch 1 is a warm-up; the figure is the median of the epochs after it. The last line reads
``zoo/hand-written: R``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mlp_hand(dm, initial):
    """nn.Sequential MLP 784-128-10 on the float features as they are."""
    from torch import nn

    x, _ = dm.splits["train"]
    net = nn.Sequential(nn.Flatten(), nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 10))
    net.load_state_dict({k.replace("dense1", "1").replace("output", "3"): v for k, v in initial.items()})
    return net, None


def lenet5_hand(dm, initial):
    """LeNet-5 built directly; a batch goes uint8 -> float -> padded to 32x32 -> normalised, as a user writes it."""
    import torch
    import torch.nn.functional as F

    from zoo.nets.lenet import LeNet5

    spec = dm.spec
    channels, height, width = spec.input_shape
    mean, std = spec.pixel_mean, spec.pixel_std
    assert (channels, height, width) == (1, 28, 28) and len(mean) == len(std) == 1, "per-channel stats expected"
    net = LeNet5([channels, height, width], len(spec.class_names), variant="classic")
    net.load_state_dict(initial)
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)

    def prepare(x):
        x = F.pad(x.float(), (2, 2, 2, 2))  # 28 -> 32, black borders (0), as the paper padded MNIST
        return (x / 255.0 - mean_t) / std_t

    return net, prepare


@dataclass(frozen=True)
class Case:
    overrides: list[str]  # zoo's config, as on the command line
    hand: Callable  # (datamodule, initial state of zoo's net) -> (net, batch preparation or None)


CASES = {
    "mlp": Case(
        [
            "model=mlp",
            "model.net.hidden=[128]",
            "data=synthetic",
            "data.n_samples=66667",  # 60,000 in the training split
            "data.test_fraction=0.05",
            "data.val_fraction=0.05",
            "data.batch_size=128",
            "optimizer=adam",
        ],
        mlp_hand,
    ),
    "lenet5": Case(
        [
            "model=lenet5",
            "model.variant=classic",
            "data=mnist5k",  # 5,000 real MNIST images, bundled: 3,500 in the training split
            "data.normalize=channel",  # what auto resolves to for image nets: one mean/std, as the hand loop uses
            "data.batch_size=128",  # no augmentation: mnist5k has none by default
            "optimizer=adam",
        ],
        lenet5_hand,
    ),
}


def zoo_epochs(overrides: list[str], epochs: int, tmp: Path):
    """Train through zoo's run module; returns (seconds per epoch, datamodule, initial state of the net)."""
    import lightning as L

    from zoo.config import compose_config
    from zoo.run import build_datamodule, build_task, build_trainer, prepare_process

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if batch_idx + 1 == trainer.num_training_batches:
                self.seconds.append(time.perf_counter() - self.start)

    cfg = compose_config([*overrides, f"trainer.max_epochs={epochs}"], tmp)
    prepare_process(cfg.seed)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    initial = {k: v.clone() for k, v in task.net.state_dict().items()}
    timer = EpochTimer()
    trainer = build_trainer(cfg, Path(cfg.paths.output_dir), {}, extra_callbacks=[timer])
    trainer.fit(task, datamodule=dm)
    return timer.seconds, dm, initial


def hand_epochs(case: Case, dm, initial, epochs: int, lr: float = 1e-3, batch_size: int = 128) -> list[float]:
    """The floor: the loop one writes by hand, slicing the same in-memory tensors."""
    import torch
    from torch import nn

    x, y = dm.splits["train"]
    net, prepare = case.hand(dm, initial)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if prepare is None else prepare(x[idx])
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), y[idx])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=["mlp"], choices=sorted(CASES))
    parser.add_argument("--epochs", type=int, default=4, help="epochs per side (the first is a warm-up)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args()

    load = os.getloadavg()[0]  # another busy process on these cores slows both sides, unevenly
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            zoo_s, dm, initial = zoo_epochs(CASES[case].overrides + ["logger=none"], args.epochs, Path(tmp) / case)
            hand_s = hand_epochs(CASES[case], dm, initial, args.epochs, batch_size=dm.batch_size)
            zoo_t, hand_t = statistics.median(zoo_s[1:]), statistics.median(hand_s[1:])
            rows.append((case, len(dm.splits["train"][0]), zoo_t, hand_t))
    import torch

    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; median of epochs 2..{args.epochs}; "
        f"load average {load:.1f} at start",
        "",
        "| case | train samples | zoo s/epoch | hand-written s/epoch | zoo/hand-written |",
        "|---|---|---|---|---|",
        *[f"| {c} | {n} | {z:.3f} | {h:.3f} | {z / h:.2f} |" for c, n, z, h in rows],
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text("# zoo benchmarks\n\n" + text + "\n")
    case, _, z, h = rows[0]
    print(f"zoo/hand-written: {z / h:.2f}")


if __name__ == "__main__":
    main()
