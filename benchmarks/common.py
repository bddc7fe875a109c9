"""What every benchmark case shares: timing zoo, the hand-written loop, Keras (torch backend) and Lightning fed by a
DataLoader, each as seconds per training epoch (the span from the first to the last batch of an epoch)."""

from __future__ import annotations

import collections
import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L

os.environ.setdefault("KERAS_BACKEND", "torch")  # read when keras is first imported
ROOT = Path(__file__).resolve().parents[1]


class Skip(Exception):
    """A case that cannot run here (its data is not fetched): ``run.py`` prints the reason and goes on."""


def accelerator(device: str) -> str:
    """Lightning's name (``trainer.accelerator``) for a benchmark ``--device``: cpu or cuda -> gpu."""
    return "gpu" if device == "cuda" else "cpu"


def wait_for(device: Any) -> None:
    """Wait until ``device`` has done the work queued on it: GPU kernels run asynchronously, so a clock read
    without this times the queueing, not the work."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def positive(text: str) -> int:
    """argparse's type for a count that must be at least 1 (epochs, rounds, threads): one line and exit 2 otherwise."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; give a whole number of at least 1")
    return value


def results_file(parser: Any, out: Path | None) -> Path:
    """Where a benchmark writes its section: ``--out`` or benchmarks/results.md; a path that cannot be a file stops
    the script with one line (argparse's usage error, exit 2) before it measures anything."""
    out = out or ROOT / "benchmarks" / "results.md"
    if out.is_dir() or not out.parent.is_dir():
        parser.error(f"--out {out}: not a file in an existing folder; give a path such as /tmp/results.md")
    return out


def require_cuda(parser: Any, why: str = "needs a CUDA GPU: torch sees none here") -> None:
    """Stop a GPU-only script with one line (argparse's usage error, exit 2) where torch sees no CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        parser.error(why)


@contextlib.contextmanager
def cuda_syncs() -> Iterator[collections.Counter[str]]:
    """The synchronising CUDA calls made inside the block (``.item()``, a copy from pageable memory...), counted by
    place (``file:line`` of the Python call) through CUDA's sync debug mode; the counter fills as the block ends."""
    import torch

    places: collections.Counter[str] = collections.Counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield places
        finally:
            torch.cuda.set_sync_debug_mode("default")
    places.update(f"{Path(w.filename).name}:{w.lineno}" for w in seen if "synchronizing" in str(w.message))


class EpochTimer(L.Callback):
    """Seconds of each training epoch, first batch to last; validation and checkpoint writing are left out."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        wait_for(pl_module.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            wait_for(pl_module.device)
            self.seconds.append(time.perf_counter() - self.start)


def zoo_epochs(overrides: list[str], epochs: int, tmp: Path, test: bool = False, callbacks: list[L.Callback] = ()):
    """Train through zoo's run module (``callbacks`` added to the Trainer's); returns (seconds per epoch, datamodule,
    initial state of the net), and with ``test`` the test metrics of the trained net fourth."""
    from zoo.config import compose_config
    from zoo.run import build_datamodule, build_task, build_trainer, prepare_process

    cfg = compose_config([*overrides, f"trainer.max_epochs={epochs}"], tmp)
    prepare_process(cfg.seed)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    initial = {k: v.clone() for k, v in task.net.state_dict().items()}
    timer = EpochTimer()
    trainer = build_trainer(cfg, Path(cfg.paths.output_dir), {}, extra_callbacks=[timer, *callbacks])
    trainer.fit(task, datamodule=dm)
    if not test:
        return timer.seconds, dm, initial
    return timer.seconds, dm, initial, trainer.test(task, datamodule=dm, verbose=False)[0]


def zoo_sides(config: list[str], epochs: int, workdir: Path):
    """zoo as users run it and with the fast path off (``steps_per_execution=1``), and on a GPU also without CUDA
    graphs (:func:`without_graphs`); returns those sides, the data module, the net's initial state and the training
    tensors on the CPU for the other sides (each moves them where its users would: the hand-written loop to the device
    once, the peers batch by batch)."""
    zoo, dm, initial, tested = zoo_epochs(config, epochs, workdir / "zoo", test=True)
    one_step, _, _ = zoo_epochs([*config, "steps_per_execution=1"], epochs, workdir / "zoo1")
    x, y = dm.splits["train"]
    sides = {"zoo": zoo, "zoo:steps_per_execution=1": one_step, **without_graphs(config, epochs, workdir, tested)}
    return sides, dm, initial, x.cpu(), y.cpu()


def without_graphs(config: list[str], epochs: int, workdir: Path, tested: dict, model: str = "") -> dict[str, list]:
    """On a GPU (``trainer.accelerator=gpu``): zoo with its groups of steps run in Python (``cuda_graphs=false``), and
    the test accuracy of both runs, which must agree (the same steps; float rounding in another kernel order aside);
    nothing elsewhere. ``model`` names the sides of a case with several models (``zoo:lstm:cuda_graphs=false``)."""
    if "trainer.accelerator=gpu" not in config:
        return {}
    eager, _, _, eager_tested = zoo_epochs([*config, "cuda_graphs=false"], epochs, workdir / "eager", test=True)
    zoo = f"zoo:{model}" if model else "zoo"
    return {
        f"{zoo}:cuda_graphs=false": eager,
        f"acc:{zoo}": [tested["test/acc"]],
        f"acc:{zoo}:cuda_graphs=false": [eager_tested["test/acc"]],
    }


def hand_epochs(
    net, prepare: Callable | None, x, y, epochs: int, batch_size: int, lr: float = 1e-3, device: str = "cpu"
) -> list[float]:
    """The floor: the loop one writes by hand, slicing in-memory tensors (moved to ``device`` once, as the CIFAR-10
    speed records keep them on the GPU), Adam and cross-entropy."""
    import torch
    from torch import nn

    net, x, y = net.to(device), x.to(device), y.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for epoch in range(epochs):
        wait_for(device)
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).to(device)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if prepare is None else prepare(x[idx])
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), y[idx])
            loss.backward()
            optimizer.step()
        wait_for(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def lightning_dataloader_epochs(
    net,
    prepare: Callable | None,
    dataset,
    classes: int,
    epochs: int,
    batch_size: int,
    workdir: Path,
    lr: float = 1e-3,
    device: str = "cpu",
) -> list[float]:
    """Lightning as lightning-hydra-template sets it up: a per-sample DataLoader over ``dataset`` (each batch copied
    to the device, then ``prepare``d if given), Trainer defaults (progress bar, logger, checkpoints, summary), loss
    and accuracy logged through torchmetrics."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchmetrics import MeanMetric
    from torchmetrics.classification import MulticlassAccuracy

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.loss_fn = nn.CrossEntropyLoss()
            self.train_loss, self.train_acc = MeanMetric(), MulticlassAccuracy(num_classes=classes)

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            logits = self.net(xb if prepare is None else prepare(xb))
            loss = self.loss_fn(logits, yb)
            self.train_loss(loss)
            self.train_acc(logits.argmax(1), yb)
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs, default_root_dir=str(workdir), callbacks=[timer], accelerator=accelerator(device), devices=1
    )
    trainer.fit(Module(), train_dataloaders=loader)
    return timer.seconds


def keras_epochs(model, x, y, epochs: int, batch_size: int) -> list[float]:
    """``model.fit`` (Keras 3, torch backend, on the device that ``KERAS_TORCH_DEVICE`` names) with Adam and sparse
    cross-entropy on numpy arrays, as a Keras user writes it; seconds of each epoch from a callback."""
    import keras

    device = os.environ.get("KERAS_TORCH_DEVICE", "cpu")

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            wait_for(device)
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            wait_for(device)
            self.seconds.append(time.perf_counter() - self.start)

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    timer = Timer()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return timer.seconds


def peer(name: str, measure: Callable[..., list[float]], *args: Any, **kwargs: Any) -> list[float]:
    """A peer's seconds per epoch, or [] ("not installed") when its package is missing: ``pip install .[bench]``."""
    try:
        return measure(*args, **kwargs)
    except ModuleNotFoundError as err:
        print(f"{name}: not installed ({err}); pip install .[bench]")
        return []
