"""What keeps a run safe to stop and resume: each epoch's random draws fixed by (seed, epoch), a checkpoint and a
closed W&B run on Ctrl-C or SIGTERM, a stop with a clear message when the loss becomes NaN, and checks that a
checkpoint being resumed belongs to this model and data."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import Interrupted, ZooError
from zoo.internals import EpochLearningRate
from zoo.outputs import RunFolder


class ReseedEachEpoch(L.Callback):
    """Seeds torch, numpy and random from (seed, epoch, rank) when each training epoch starts, so that dropout and
    every other draw of an epoch are the same whether the run went straight through or resumed from a checkpoint."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_seed = (self.seed * 1_000_003 + trainer.current_epoch * 1009 + trainer.global_rank) % 2**63
        random.seed(epoch_seed)
        np.random.seed(epoch_seed % 2**32)
        if pl_module.device.type == "cpu":  # torch.manual_seed would also queue a seed for each other backend: 1 ms
            torch.default_generator.manual_seed(epoch_seed)
        else:
            torch.manual_seed(epoch_seed)  # every device's generator too


class StopOnNonFinite(EpochLearningRate, L.Callback):
    """Stops training when the loss becomes NaN or infinite, naming the step and suggesting a lower learning rate.

    The first bad step is tracked on the device (no host sync per step) and read every ``log_every_n_steps`` steps
    and at each epoch's end.
    """

    def __init__(self) -> None:
        self.first_bad: torch.Tensor | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        step = trainer.global_step  # already counts this step
        bad = ~torch.isfinite(loss.detach())
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)
        if step % max(1, trainer.log_every_n_steps) == 0:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: L.Trainer) -> None:
        if self.first_bad is None:
            return
        first_bad = self.first_bad
        if trainer.world_size > 1:  # every rank checks at the same steps: all stop together, none waits forever
            first_bad = trainer.strategy.reduce(first_bad.float(), reduce_op="max")
        if (step := int(first_bad)) < 0:
            return
        lr = self.epoch_lr
        rate = f"optimizer.lr={lr:g} is too high here: try optimizer.lr={lr / 10:g}" if lr else "lower optimizer.lr"
        raise ZooError(
            f"the training loss became NaN or infinite at step {step} (epoch {trainer.current_epoch + 1}); training "
            f"stopped. {rate}, or add trainer.gradient_clip_val=1"
        )


class Resumable(L.Callback):
    """What a later run needs to continue this one: the W&B run id inside every checkpoint, and
    ``checkpoints/interrupted.ckpt`` when Ctrl-C or SIGTERM stops training."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.signal: str | None = None
        self.saved: Path | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        from lightning.pytorch.loggers import WandbLogger

        ids = [logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if ids and ids[0]:
            checkpoint["wandb_run_id"] = str(ids[0])

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.signal = "SIGINT"
        elif isinstance(exception, SIGTERMException):
            self.signal = "SIGTERM"
        else:
            return
        path = self.folder.checkpoints / "interrupted.ckpt"
        if not path.exists():
            trainer.save_checkpoint(path, weights_only=False)
            self.saved = path

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (signal.SIGINT if self.signal == "SIGINT" else signal.SIGTERM)

    def interrupted(self) -> Interrupted:
        saved = (
            f"checkpoint saved to {self.saved}; resume with ckpt_path={self.saved}"
            if self.saved
            else "no checkpoint saved"
        )
        return Interrupted(f"interrupted by {self.signal}: {saved}", exit_code=self.exit_code)


def check_trainer(cfg: DictConfig) -> None:
    """Refuse trainer settings Lightning would only refuse after the run folder exists."""
    epochs = cfg.trainer.get("max_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < -1 or epochs == 0):
        raise ZooError(f"trainer.max_epochs={epochs} is not valid; use a positive number of epochs (-1: no limit)")
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    apple = accelerator == "gpu" and torch.backends.mps.is_available()  # Lightning's gpu is Apple's GPU on a Mac
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available() and not apple:
        raise ZooError(
            f"trainer.accelerator={accelerator}: this machine has no GPU that torch can use; leave it to "
            "trainer.accelerator=auto (trainer=default), which takes a GPU where there is one and the CPU elsewhere"
        )
    check_matmul_precision(cfg.get("matmul_precision", "highest"))


def check_matmul_precision(value: Any) -> str:
    """``matmul_precision``, torch's float32 matrix-product precision: ``highest`` (exact fp32, torch's default),
    ``high`` (TF32 on tensor-core GPUs: several times faster, ~1e-3 relative error) or ``medium`` (bf16)."""
    if value not in ("highest", "high", "medium"):
        raise ZooError(
            f"matmul_precision={value!r} must be highest (exact fp32), high (TF32 on tensor-core GPUs) or medium (bf16)"
        )
    return value


def check_resumable(checkpoint: dict[str, Any], cfg: DictConfig, path: str | Path) -> None:
    """A checkpoint resumes only the model and data it was trained on (its net's shape included)."""
    stored = checkpoint["zoo_config"]
    was = f"model={stored['model']['name']} data={stored['data']['name']}"
    now = f"model={cfg.model.name} data={cfg.data.name}"
    if was != now:
        raise ZooError(f"ckpt_path: '{path}' holds {was} but this run is {now}; resume with {was}, or drop ckpt_path")
    net_was = stored["model"].get("net", {})
    net_now = OmegaConf.to_container(cfg.model.net, resolve=True)
    changed = sorted(k for k in set(net_was) | set(net_now) if net_was.get(k) != net_now.get(k))
    if changed:
        diffs = ", ".join(f"model.net.{k}={net_was.get(k)} there, {net_now.get(k)} here" for k in changed)
        raise ZooError(f"ckpt_path: '{path}' holds a different {was} net ({diffs}); resume with its settings")
    done = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    max_epochs = (cfg.get("trainer") or {}).get("max_epochs")
    if isinstance(done, int) and isinstance(max_epochs, int) and -1 < max_epochs < done:  # Lightning's refusal
        raise ZooError(
            f"ckpt_path: '{path}' has trained {done} epochs and trainer.max_epochs={max_epochs}; give "
            f"trainer.max_epochs above {done} to train on from it"
        )


def resume_wandb(cfg: DictConfig, checkpoint: dict[str, Any]) -> None:
    """Point the W&B logger at the checkpoint's W&B run, so a resumed run continues the same run."""
    run_id = checkpoint.get("wandb_run_id")
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if run_id and wandb_cfg is not None:
        with open_dict(cfg):
            wandb_cfg.id = run_id
            wandb_cfg.resume = "allow"


RESTART_COUNTS = ("TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT")  # torchrun --max-restarts, sbatch --requeue


def restarted_run(folder: Path) -> str | None:
    """A run that torchrun (``--max-restarts``) or SLURM (a requeued job) started again goes on in its own folder:
    returns the newest of the folder's ``last.ckpt`` and the checkpoint Lightning saves when SLURM warns of the
    time limit (``hpc_ckpt_N.ckpt``) to resume from; "" when the first attempt died before its first checkpoint
    (the run starts again there); None for a first attempt."""
    if all(int(os.environ.get(name, "0") or 0) == 0 for name in RESTART_COUNTS):
        return None
    found = [p for p in [folder / "checkpoints" / "last.ckpt", *folder.glob("hpc_ckpt_*.ckpt")] if p.is_file()]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else ""


def rejoin_restarted_group(trainer: L.Trainer) -> None:
    """Join the process group of a torchrun restart under a key prefix of this attempt's own. torchrun's agent
    keeps one store across restarts; processes that join it as Lightning does (``env://``) can read the address a
    dead process of the previous attempt left there, and the restart fails with "Gloo connectFullMesh failed ...
    Connection refused". Lightning skips its own set-up when the group exists."""
    import datetime

    import torch.distributed as dist

    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt == "0" or dist.is_initialized() or not hasattr(trainer.strategy, "process_group_backend"):
        return
    strategy, world = trainer.strategy, int(os.environ["WORLD_SIZE"])
    backend = strategy.process_group_backend or ("nccl" if strategy.root_device.type == "cuda" else "gloo")
    timeout = datetime.timedelta(minutes=30)  # Lightning's default
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, False, timeout=timeout)
    dist.init_process_group(
        backend, store=dist.PrefixStore(f"/zoo/attempt_{attempt}", store), rank=int(os.environ["RANK"]),
        world_size=world, timeout=timeout,
    )  # fmt: skip


LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def launch_variables() -> dict[str, str | None]:
    """The variables Lightning's DDP launcher sets in the process that starts the others, as they are now."""
    return {name: os.environ.get(name) for name in LAUNCH_VARIABLES}


def leave_process_group(before: dict[str, str | None]) -> None:
    """Close the DDP process group a finished run joined and give the launch variables back their values from
    ``before`` the run, so that the next run of this process (the next job of a ``--multirun``, the next fit in a
    notebook) starts processes of its own: with ``LOCAL_RANK`` left set, Lightning would wait for processes that
    nobody starts."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def is_global_zero() -> bool:
    """Rank 0 of a distributed job, read before Lightning starts: a torchrun/SLURM rank, or a child process that
    Lightning's DDP launcher started (it sets LOCAL_RANK, NODE_RANK)."""
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in ranks)
