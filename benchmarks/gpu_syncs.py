"""Host-GPU synchronisations inside zoo's training steps, counted by CUDA's sync debug mode, on a CUDA GPU.

    python benchmarks/gpu_syncs.py            # the cases below, 2 epochs each
    python benchmarks/gpu_syncs.py --epochs 3

A synchronisation (``.item()``, a CPU tensor copied to the GPU from pageable memory, ``nonzero``...) makes the
host wait until the GPU has run everything queued, so the GPU idles while Python prepares the next step; on small
models that is most of a step's time. ``torch.cuda.set_sync_debug_mode("warn")`` is switched on from the start to
the end of every training batch (Lightning's ``on_train_batch_start`` / ``_end``), so validation and epoch-end
logging, which sync once an epoch, are left out. Prints, per case, the optimiser steps, the synchronisations and
where they come from (file:line of the Python call). The fast path's goal: none per step.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import cuda_syncs, positive, require_cuda, zoo_epochs  # noqa: E402

MLP = ["model=mlp", "model.net.hidden=[128]", "data=synthetic", "data.n_samples=20000"]
CASES = {
    "mlp (fast path)": MLP,
    "mlp steps_per_execution=1": [*MLP, "steps_per_execution=1"],
    "cnn + augmentation": ["model=cnn", "data=digits", "data.augment.crop_padding=1", "data.augment.hflip=true"],
    "lenet5 bf16 + channels_last": [
        "model=lenet5",
        "data=mnist5k",
        "trainer.precision=bf16-mixed",
        "channels_last=true",
    ],
    "lstm": ["model=rnn", "model.cell=lstm", "data=text_synth", "data.count=5000"],
}


class SyncCounter(L.Callback):
    """Counts every synchronising CUDA call made between a training batch's start and end, and the run's optimiser
    steps."""

    def __init__(self) -> None:
        self.places: collections.Counter[str] = collections.Counter()
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._block = cuda_syncs()
        self._batch = self._block.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._block.__exit__(None, None, None)
        self.places.update(self._batch)

    def on_train_end(self, trainer, pl_module) -> None:
        self.steps = trainer.global_step


def count(overrides: list[str], epochs: int, tmp: Path) -> tuple[int, collections.Counter[str]]:
    """(optimiser steps, synchronisations by place) of a zoo run on the GPU."""
    counter = SyncCounter()
    zoo_epochs([*overrides, "logger=none", "trainer.accelerator=gpu"], epochs, tmp, callbacks=[counter])
    return counter.steps, counter.places


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive, default=2)
    args = parser.parse_args()
    require_cuda(parser)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(CASES.items()):
            steps, places = count(overrides, args.epochs, Path(tmp) / str(i))
            total = sum(places.values())
            where = ", ".join(f"{place} x{n}" for place, n in places.most_common(4))
            rows.append(f"| {name} | {steps} | {total} | {total / max(steps, 1):.2f} | {where or '-'} |")
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.epochs} epochs a case\n")
    print("| case | optimiser steps | syncs in training steps | per step | where |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
