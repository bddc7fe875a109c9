"""The one place that instantiates data, task, callbacks, loggers and trainer, and runs fit and test.

``scripts/train.py`` calls :func:`train`, ``scripts/eval.py`` calls :func:`evaluate`; both build through the same
functions below and write through one :class:`zoo.outputs.RunFolder`. What a model can do and read comes from its
config (``tasks``, ``input``), what a data set holds from its spec (``zoo.spec``): nothing here names a model or a
data set.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.callbacks import Finetune, RunOutputs, TestReport, to_float_dict
from zoo.config import build_datamodule, check_switch, declared, group_options, instantiate, settings_of
from zoo.console import quiet
from zoo.cv import check_folds, hold_out_fold, summarise
from zoo.display import ProgressBar
from zoo.errors import ZooError
from zoo.internals import ddp_children_run_this_job
from zoo.outputs import RunFolder
from zoo.protocols import RunFiles, SavesPretrained
from zoo.pruning import PruneTrial
from zoo.report import summary_text
from zoo.safety import (
    ReseedEachEpoch,
    Resumable,
    StopOnNonFinite,
    check_matmul_precision,
    check_resumable,
    check_trainer,
    is_global_zero,
    launch_variables,
    leave_process_group,
    rejoin_restarted_group,
    restarted_run,
    resume_wandb,
)
from zoo.search import AUTO, clock, clock_seconds, record_pruned
from zoo.spec import ANY, IMAGE, TABLE, TEXT, DataSpec, check_same_inputs, spec_from_dict
from zoo.tasks.base import SupervisedTask
from zoo.tasks.grouped import check_steps_per_execution
from zoo.tracking import finish_wandb, start_logging

log = logging.getLogger(__name__)


# -- entry points ------------------------------------------------------------------------------------------


@dataclass
class Trained:
    """What a run leaves in memory: its test metrics, the task with the tested weights and the data module
    (neither for a cross-validation, whose folds each had their own), and its folder."""

    metrics: dict[str, float]
    folder: RunFolder
    task: SupervisedTask | None = None
    datamodule: Any = None


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit ``cfg.model`` on ``cfg.data``, test the best checkpoint, write the run folder; returns test metrics."""
    return run_training(cfg).metrics


def run_training(cfg: DictConfig) -> Trained:
    """:func:`train`, keeping the trained task and its data (``zoo.api.fit``)."""
    verbose = bool(cfg.get("verbose", False))  # Lightning's tables of test and validation metrics too
    cv = cfg.get("cv") or {}
    if cv.get("folds") is not None and cv.get("fold") is None:
        folder = run_folder(cfg)
        metrics = cross_validate(cfg)
        write_summary(cfg, folder, summary_values(metrics))
        return Trained(metrics, folder)
    check_trainer(cfg)
    folder = run_folder(cfg)
    restart = restarted_run(folder.path)  # torchrun or SLURM started the run again: it goes on in its folder
    if is_global_zero() and restart is None:
        folder.check_free()
    ckpt_path = restart or resolve_ckpt_path(cfg.get("ckpt_path"), cfg, folder.path)
    if restart is not None and is_global_zero():
        print(f"restarted by the launcher: the run goes on in {folder.path} from {restart or 'the start'}")
    if ckpt_path:  # refused before Lightning reads it: unsafe, or another model's
        checkpoint = load_checkpoint(ckpt_path)
        check_resumable(checkpoint, cfg, ckpt_path)
        resume_wandb(cfg, checkpoint)
    prepare_process(cfg.seed, verbose)
    datamodule = build_datamodule(cfg.data, cfg.model)
    if cv.get("folds") is not None:  # one fold of a cross-validation: that fold is the validation split
        hold_out_fold(datamodule, cv.fold, check_folds(cv.folds), cfg.data.get("split_seed", 0))
    task = build_task(cfg, datamodule.spec)
    record_weights_architecture(cfg, task.net)
    config = plain_config(cfg)
    resumable = Resumable(folder)
    outputs = RunOutputs(folder, config)
    extra = [outputs, TestReport(folder), ReseedEachEpoch(cfg.seed), StopOnNonFinite(), resumable]
    if cfg.model.get("finetune"):
        extra.append(Finetune.for_model(cfg.model))
    pruning = PruneTrial.for_job(cfg)  # a trial of an Optuna search reports to its study, which may stop it
    if pruning is not None:
        extra.append(pruning)
    trainer = build_trainer(cfg, folder.path, config, extra_callbacks=extra)
    if is_global_zero():  # once the data, model and trainer settings hold: a failed start leaves nothing
        folder.claim(config, restart=restart is not None)
        if isinstance(datamodule, RunFiles):  # what the data fitted (a tokenizer)
            folder.write_files(datamodule.run_files())
    launch = launch_variables()  # DDP's launcher changes them; the next run of this process needs them back
    rejoin_restarted_group(trainer)  # a process that torchrun restarted joins a group of its attempt's own
    exit_code = 1  # what W&B records unless the run completes
    try:
        start = time.perf_counter()
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        seconds = time.perf_counter() - start
        history = list(outputs.history)  # before testing reloads the best checkpoint's (shorter) one
        stopped = ended_by(trainer)  # and its callbacks' state: early stopping had not stopped then
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback is not None else ""
        results = trainer.test(task, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=verbose)
        held_out = cv.get("folds") is not None  # a cross-validation fold: its scores on the fold it held out
        metric = str(cfg.get("optimized_metric") or "")
        if results and (held_out or metric.startswith("val/") or metric == AUTO):  # or a search's (auto: val/...)
            scores = trainer.validate(
                task, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=verbose
            )
            results[0].update(scores[0] if scores else {})
        if isinstance(task.net, SavesPretrained) and trainer.is_global_zero:  # the tested weights, as a hub has them
            folder.save_pretrained(task.net, task.input.mean, task.input.std, task.spec.class_names)
        exit_code = 0
        if is_global_zero():
            print(tested(trainer, history))
        metrics = finish_run(results, folder)
        if is_global_zero() and not held_out:  # a fold's numbers are not the cross-validation's summary
            facts = {**getattr(task, "facts", {}), "seconds": seconds, "best_epoch": best_epoch(trainer, history),
                     "ended_by": stopped}  # fmt: skip
            write_summary(cfg, folder, summary_values(metrics, history, facts))
        return Trained(metrics, folder, task, datamodule)
    except SystemExit:  # Lightning's answer to Ctrl-C and SIGTERM, once Resumable saved a checkpoint
        if resumable.signal is None:
            raise
        exit_code = resumable.exit_code
        raise resumable.interrupted() from None
    finally:
        finish_wandb(exit_code)
        leave_process_group(launch)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test a checkpoint on the test split of the data it was trained on, with the config stored inside it; or on
    another data set (``data=NAME``) that gives the inputs and classes it was trained on."""
    check_trainer(cfg)
    folder = run_folder(cfg)
    folder.check_free()
    checkpoint = load_checkpoint(cfg.ckpt_path)
    stored = OmegaConf.create(checkpoint["zoo_config"])
    given = cfg.get("data") or OmegaConf.create()
    data_cfg = given if "_target_" in given else OmegaConf.merge(stored.data, given)  # data=NAME | +data.KEY=VALUE
    verbose = bool(cfg.get("verbose", False))
    prepare_process(stored.seed, verbose)
    datamodule = build_datamodule(data_cfg, stored.model)
    task = task_from_checkpoint(checkpoint)
    check_same_inputs(task.spec, datamodule.spec)
    if type(datamodule).__qualname__ in checkpoint:  # what the data fitted in training (a text tokenizer)
        datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
    config = plain_config(cfg)
    shown = [TestReport(folder), ProgressBar()]  # no bar redrawn for a test pass: its metrics come as one line
    trainer = build_trainer(cfg, folder.path, config, extra_callbacks=shown)
    folder.claim(config)
    try:
        results = trainer.test(task, datamodule=datamodule, verbose=verbose)
        return finish_run(results, folder)
    finally:
        finish_wandb()


def cross_validate(cfg: DictConfig) -> dict[str, float]:
    """``cv.folds=K``: every fold trained as its own run in ``<run folder>/fold<i>`` (its own W&B run, grouped by the
    experiment), that fold held out as validation (``zoo.cv``); returns each metric's mean over the folds, with
    ``<metric>_std`` beside it. A ``trainer.max_time`` of DD:HH:MM:SS (a search's budget) is the folds' together:
    each starts with what is left, and none starts once it is spent."""
    folds = check_folds(cfg.cv.folds)
    folder = run_folder(cfg)
    folder.check_free()
    hold_out_fold(build_datamodule(cfg.data, cfg.model), 0, folds, cfg.data.get("split_seed", 0))  # fail early
    folder.claim(plain_config(cfg))
    limit = clock_seconds(cfg.trainer.get("max_time"))  # a search's budget: the folds share it
    deadline = None if limit is None else time.monotonic() + limit
    rows = []
    for fold in range(folds):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < 1 and rows:
            print(f"cross-validation: trainer.max_time is spent after {fold} of {folds} folds; the means are theirs")
            record_pruned(f"cut short by trainer.max_time after {fold} of {folds} folds")  # not ranked with whole ones
            break
        fold_cfg = cfg.copy()
        with open_dict(fold_cfg):
            fold_cfg.cv.fold = fold
            if left is not None:
                fold_cfg.trainer.max_time = clock(max(left, 1))
            fold_cfg.paths.output_dir = str(folder.fold(fold).path)
            if fold_cfg.get("logger") and fold_cfg.logger.get("wandb"):
                fold_cfg.logger.wandb.name = f"{cfg.name}-fold{fold}"  # group stays the experiment's name
        print(f"cross-validation: fold {fold + 1}/{folds}")
        rows.append({"fold": fold, **run_training(fold_cfg).metrics})
    return summarise(rows, folder)


# -- building blocks ---------------------------------------------------------------------------------------


def build_task(cfg: DictConfig, spec: DataSpec) -> SupervisedTask:
    """The task the model config names for this data's kind (``model.tasks``), once the model is known to fit the
    data; its own settings (``OPTIONS``: a triplet margin, a detector's NMS threshold...) come from the model
    config's keys of those names."""
    model = cfg.model
    check_model_fits(model, spec)
    cls = task_class(model, spec)
    given = [k for k in cls.OPTIONS if k in model]
    options = {k: OmegaConf.to_object(model[k]) if OmegaConf.is_config(model[k]) else model[k] for k in given}
    task = cls(
        **options,
        net=OmegaConf.to_container(model.net, resolve=True),
        spec=spec.to_dict(),
        loss=model.loss,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        l1=model.l1,
        l2=model.l2,
        sparsity=model.get("sparsity"),
        channels_last=check_switch("channels_last", cfg.get("channels_last", "auto")),
        backbone_lr_scale=Finetune.full_backbone_lr_scale(model) if model.get("finetune") else 1.0,
    )
    task.steps_per_execution = check_steps_per_execution(cfg.get("steps_per_execution", 1))
    task.cuda_graphs = check_switch("cuda_graphs", cfg.get("cuda_graphs", "auto"))
    task.configure_optimizers()  # bad optimizer or scheduler settings are refused now, before the run folder exists
    if cfg.get("compile"):
        task.net.compile()  # in place: checkpoints keep the plain net's parameter names
    return task


def check_model_fits(model: Mapping[str, Any], spec: DataSpec) -> None:
    """Refuse a model that cannot do the data's task or read its inputs, naming both and what would fit, as the
    configs declare it (``tasks`` and ``input`` of each model, the input kind and task of each data set)."""
    name, reads = model["name"], model.get("input", TABLE)
    if spec.task not in model["tasks"]:
        raise ZooError(
            f"model={name} does {', '.join(model['tasks'])} but data={spec.name} is a {spec.task} data set; "
            f"choose a {spec.task} model (e.g. {either(models_for(spec.task, suggested=True))}) or another data set"
        )
    if reads == ANY:
        return
    if reads == TEXT and not spec.is_text:
        raise ZooError(
            f"model={name} reads text but data={spec.name} is not text; "
            f"choose a text data set ({', '.join(data_sets_of(TEXT))})"
        )
    if spec.is_text and reads != TEXT:
        raise ZooError(
            f"model={name} cannot read text but data={spec.name} is text; choose {either(models_for(reads=TEXT))}"
        )
    if reads == IMAGE and not spec.is_image:
        raise ZooError(
            f"model={name} needs images but data={spec.name} is a table of {spec.num_features} features; "
            f"choose an image data set ({', '.join(data_sets_of(IMAGE, spec.task))}) "
            f"or {either(models_for(spec.task, reads=TABLE, suggested=True))}"
        )


def models_for(task: str | None = None, reads: str | None = None, suggested: bool = False) -> list[str]:
    """The models whose configs say they do ``task`` on inputs they ``reads`` (and are suggested, when asked)."""
    found = []
    for option in group_options("model"):
        model = declared("model", option)
        if task is not None and task not in (model.get("tasks") or {}):
            continue
        if (reads is not None and model.get("input") != reads) or (suggested and not model.get("suggest")):
            continue
        found.append(f"model={option}")
    return found


def data_sets_of(input_kind: str, task: str | None = None) -> list[str]:
    """The data sets whose data module declares ``input_kind`` (and ``task``, where the module fixes one)."""
    found = []
    for option in group_options("data"):
        try:
            module = get_class(declared("data", option)["_target_"])
        except Exception:  # noqa: BLE001 - a config that does not build names nothing here
            continue
        fixed = getattr(module, "task", None)
        if getattr(module, "input_kind", None) == input_kind and (task is None or fixed in (None, task)):
            found.append(option)
    return found


def either(options: list[str]) -> str:
    """``a, b or c``."""
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def build_trainer(
    cfg: DictConfig, output_dir: Path, config: dict[str, Any], extra_callbacks: list[L.Callback] = ()
) -> L.Trainer:
    # fp32 matrix products: the knob Lightning's "Tensor Cores" advice names (TF32 at high); CPUs ignore it
    torch.set_float32_matmul_precision(check_matmul_precision(cfg.get("matmul_precision", "highest")))
    with settings_of("callbacks"):
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    with settings_of("logger"):
        loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c and "_target_" in c]
    callbacks = [*extra_callbacks, *callbacks]  # RunOutputs records the epoch before ModelCheckpoint saves it
    with settings_of("trainer"):
        trainer = instantiate(
            cfg.trainer, default_root_dir=str(output_dir), callbacks=callbacks, logger=loggers or False
        )
    for logger in loggers:  # a W&B run starts here: only once every setting is known to hold
        start_logging(logger, config)
    return trainer


def record_weights_architecture(cfg: DictConfig, net: torch.nn.Module) -> None:
    """A folder of weights (``model.weights=FOLDER``) builds the architecture its ``config.json`` names, whatever
    ``model.backbone`` says (resnet18 by default): the run's config.yaml and W&B config record the one that trained."""
    built, given = getattr(net, "backbone", None), cfg.model.get("backbone")
    if isinstance(built, str) and isinstance(given, str) and built != given:
        log.info("model.weights=%s holds %s weights: the net is %s (not model.backbone=%s)", cfg.model.get("weights"),
                 built, built, given)  # fmt: skip
        with open_dict(cfg):
            cfg.model.backbone = built


def task_class(model: Mapping[str, Any], spec: DataSpec) -> type[SupervisedTask]:
    """The class ``model.tasks`` names for the data's kind (a ``zoo.tasks.base.SupervisedTask``)."""
    tasks = model.get("tasks")
    if not isinstance(tasks, Mapping) or spec.task not in tasks:
        raise ZooError(
            f"model={model.get('name')} names no task for {spec.task} data (model.tasks); a checkpoint written by "
            "another zoo version needs training again"
        )
    target = tasks[spec.task]
    with settings_of(f"model.tasks.{spec.task}"):
        cls = get_class(str(target))
    if not (isinstance(cls, type) and issubclass(cls, SupervisedTask)):
        raise ZooError(
            f"model.tasks.{spec.task}={target} is not a zoo task; name a subclass of zoo.tasks.base.SupervisedTask, "
            "e.g. zoo.tasks.classification.ClassificationTask"
        )
    return cls


def task_from_checkpoint(checkpoint: dict[str, Any]) -> SupervisedTask:
    hparams = checkpoint["hyper_parameters"]
    task = task_class(checkpoint["zoo_config"]["model"], spec_from_dict(hparams["spec"]))(**hparams)
    task.load_state_dict(checkpoint["state_dict"])
    return task


def restore_datamodule(checkpoint: dict[str, Any]) -> Any:
    """The run's data module, built from its stored config without reading any data, with its fitted state
    (scalers, vocabulary, image spec) from the checkpoint."""
    data_cfg = OmegaConf.create(checkpoint["zoo_config"]["data"])
    datamodule = instantiate(data_cfg, _convert_="all")
    state = checkpoint.get(type(datamodule).__qualname__)
    if state is None:
        raise ZooError(f"ckpt_path: holds no {type(datamodule).__qualname__} state; train again with this zoo version")
    datamodule.load_state_dict(state)
    return datamodule


def predictions(task: SupervisedTask, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """What the task predicts for encoded inputs ``x`` (class probabilities, for a classifier), ``batch_size`` at a
    time, without gradients."""
    with torch.no_grad():
        return torch.cat([task.predict(task(b)) for b in x.split(batch_size)])


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint cannot run code when it is read."""
    path = Path(path)
    if not path.is_file():
        raise missing_checkpoint(path, "give the path of a .ckpt file from a zoo run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or a corrupt file
        raise ZooError(f"ckpt_path: {unsafe_or_corrupt(path, err)}") from None
    if "zoo_config" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ZooError(f"ckpt_path: '{path}' is not a zoo checkpoint (no stored config); give one from a zoo run")
    return checkpoint


def missing_checkpoint(path: Path, fix: str) -> ZooError:
    """A ``ckpt_path`` that is no file, in one line: a folder (a run's, a sweep's) names a checkpoint inside it."""
    if not path.is_dir():
        return ZooError(f"ckpt_path: '{path}' not found; {fix}")
    inside = sorted(path.rglob("*.ckpt"), key=lambda p: (p.name != "last.ckpt", len(p.parts), str(p)))
    example = f", e.g. ckpt_path={inside[0]}" if inside else f"; it holds none: {fix}"
    return ZooError(f"ckpt_path: '{path}' is a folder; give a .ckpt file in it{example}")


def unsafe_or_corrupt(path: Path, err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"'{path}' would run code when loaded (it calls {found.group(1)}); refused, nothing was run"
    with path.open("rb") as f:
        head = f.read(2)
    if head not in (b"PK", b"\x80\x02"):  # torch.save writes a zip archive (before torch 1.6, a protocol-2 pickle)
        return f"cannot load '{path}': torch.save did not write it; give a .ckpt file from a zoo run"
    first = text.splitlines()[0] if text else type(err).__name__
    return f"cannot load '{path}' ({first}); give a .ckpt file from a zoo run"


# -- run folder and process set-up -------------------------------------------------------------------------


def run_folder(cfg: DictConfig) -> RunFolder:
    """The run's folder, drawing its figures unless ``figures=false``."""
    return RunFolder(cfg.paths.output_dir, figures=bool(cfg.get("figures", True)))


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain types (no Hydra section): saved in the run folder and in checkpoints."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)  # Hydra's own section (sweep dirs etc.) is not part of the run
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_ckpt_path(ckpt_path: str | None, cfg: DictConfig, output_dir: Path) -> str | None:
    """``last`` means the newest ``last.ckpt`` among earlier runs of the same experiment (``cfg.name``)."""
    if not ckpt_path:
        return None
    if ckpt_path != "last":
        if not Path(ckpt_path).is_file():
            raise missing_checkpoint(Path(ckpt_path), "give an existing .ckpt file or ckpt_path=last")
        return str(ckpt_path)
    root = Path(cfg.paths.log_dir) / cfg.name
    found = [p for p in root.rglob("last.ckpt") if output_dir not in p.parents] if root.is_dir() else []
    if not found:
        raise ZooError(f"ckpt_path=last: no last.ckpt under '{root}' for experiment '{cfg.name}'; train it first")
    newest = max(found, key=lambda p: p.stat().st_mtime)
    log.info("resuming from %s", newest)
    return str(newest)


def prepare_process(seed: int, verbose: bool = False) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    _skip_nvml_probe_without_gpu()
    ddp_children_run_this_job()  # a DDP job of a --multirun starts its other processes for itself alone
    # Lightning prints through its own handler and the root one (Hydra's): keep Hydra's
    logging.getLogger("lightning").handlers.clear()
    lines = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    for old in [f for f in lines.filters if isinstance(f, LightningLines)]:
        lines.removeFilter(old)
    lines.addFilter(LightningLines(verbose))
    quiet(verbose)


class LightningLines(logging.Filter):
    """Lightning's adverts ("Tip: ...") never reach the screen; unless verbose, neither do the lines that zoo's own
    ``tested: ...`` line says better (where fitting stopped, which checkpoint the test reloaded), nor the count of
    accelerators the machine does not have (the GPU line stays: it says where the run went)."""

    SAID = ("`Trainer.fit` stopped", "Restoring states from", "Loaded model weights from", "TPU available: False",
            "HPU available: False")  # fmt: skip

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.hidden = ("Tip:",) if verbose else ("Tip:", *self.SAID)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(hidden in message for hidden in self.hidden)


def _skip_nvml_probe_without_gpu() -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 to keep fork safe; with a CUDA build of torch and no GPU,
    every Adam step then loads libnvidia-ml to count devices, a large share of a small net's step. With no device
    there is no CUDA context to protect, so the probe is turned off."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def best_epoch(trainer: L.Trainer, history: list[dict[str, float]]) -> int | None:
    """The epoch (from 1) whose checkpoint the test used; None where no checkpoint chose one."""
    checkpoint = trainer.checkpoint_callback
    if checkpoint is None or not checkpoint.best_model_path or checkpoint.best_model_score is None:
        return None
    score, monitor = float(checkpoint.best_model_score), checkpoint.monitor
    return next((int(r["epoch"]) for r in history if math.isclose(r.get(monitor, math.nan), score, rel_tol=1e-6)), None)


def ended_by(trainer: L.Trainer) -> str:
    """What ended training, for a summary's sentence: early stopping, or the epoch (or time) limit."""
    stopped = any(
        getattr(c, "stopped_epoch", 0) for c in trainer.callbacks if isinstance(c, L.pytorch.callbacks.EarlyStopping)
    )
    return "early stopping" if stopped else "the trainer's limit (trainer.max_epochs or max_time)"


def tested(trainer: L.Trainer, history: list[dict[str, float]]) -> str:
    """Which weights the test used, and why: the best checkpoint's epoch and score, or the last epoch's weights."""
    checkpoint = trainer.checkpoint_callback
    epochs = int(history[-1]["epoch"]) if history else trainer.current_epoch
    if checkpoint is None or not checkpoint.best_model_path or checkpoint.best_model_score is None:
        return f"tested: the weights after epoch {epochs} (no checkpoint chose better ones)"
    score, monitor, best = float(checkpoint.best_model_score), checkpoint.monitor, best_epoch(trainer, history)
    when = f" at epoch {best} of {epochs}" if best else ""
    return f"tested: {Path(checkpoint.best_model_path).name}, the best {monitor} ({score:.4f}){when}"


def summary_values(
    metrics: dict[str, float], history: list[dict[str, float]] = (), facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What an experiment's ``summary`` may name: each metric with ``_`` for ``/`` (``test_acc``, ``cv_acc``), the
    first and last epoch's values (``first_train_loss``, ``final_val_loss``), ``epochs``, ``steps``,
    ``steps_per_epoch``, and the task's and run's facts (``seconds`` of training, ``best_epoch``, ``ended_by``: what
    ended training, a linear fit's ``w``, ``b`` and ``learnt`` equation)."""
    values: dict[str, Any] = {k.replace("/", "_"): v for k, v in metrics.items()}
    if history:
        epochs, steps = int(history[-1]["epoch"]), int(history[-1]["step"])
        values.update(epochs=epochs, steps=steps, steps_per_epoch=round(steps / max(epochs, 1)))
        values.update({f"first_{k.replace('/', '_')}": v for k, v in history[0].items()})
        values.update({f"final_{k.replace('/', '_')}": v for k, v in history[-1].items()})
    values.update({k: v for k, v in (facts or {}).items() if v is not None})
    return values


def write_summary(cfg: DictConfig, folder: RunFolder, values: dict[str, Any]) -> None:
    """``summary.md``: the experiment's ``summary`` sentences with this run's numbers, printed too."""
    template = cfg.get("summary")
    if not template:
        return
    text = summary_text(str(template), values)
    folder.write_text("summary.md", f"# {cfg.name}\n\n{text}\n")
    print(f"what this run showed:\n{text}", flush=True)


def finish_run(results: list[dict[str, Any]], folder: RunFolder) -> dict[str, float]:
    metrics = to_float_dict(results[0]) if results else {}
    if not is_global_zero():
        return metrics
    folder.write_metrics(metrics)
    line = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    print(f"test metrics: {line}\nrun folder: {folder.path}")
    return metrics
