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
import warnings
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
    """Records every synchronising CUDA call made between a training batch's start and end."""

    def __init__(self) -> None:
        self.places: collections.Counter[str] = collections.Counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._catch = warnings.catch_warnings(record=True)
        self._seen = self._catch.__enter__()
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("default")
        for w in self._seen:
            if "synchronizing" in str(w.message):
                self.places[f"{Path(w.filename).name}:{w.lineno}"] += 1
        self._catch.__exit__(None, None, None)


def count(overrides: list[str], epochs: int, tmp: Path) -> tuple[int, collections.Counter[str]]:
    """(optimiser steps, synchronisations by place) of a zoo run on the GPU."""
    from zoo.config import compose_config
    from zoo.run import build_datamodule, build_task, build_trainer, prepare_process

    cfg = compose_config([*overrides, "logger=none", "trainer.accelerator=gpu", f"trainer.max_epochs={epochs}"], tmp)
    prepare_process(cfg.seed)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    counter = SyncCounter()
    trainer = build_trainer(cfg, Path(cfg.paths.output_dir), {}, extra_callbacks=[counter])
    trainer.fit(task, datamodule=dm)
    return trainer.global_step, counter.places


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU: torch sees none here")
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
