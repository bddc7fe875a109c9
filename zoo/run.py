"""The one place that instantiates data, task, callbacks, loggers and trainer, and runs fit and test.

``scripts/train.py`` calls :func:`train`, ``scripts/eval.py`` calls :func:`evaluate`; both build through the same
functions below.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.callbacks import Finetune, RunOutputs, TestReport, to_float_dict
from zoo.config import instantiate, settings_of
from zoo.data.spec import CLASSIFICATION, DETECTION, REGRESSION, SEGMENTATION, DataSpec
from zoo.errors import ZooError
from zoo.fast import check_steps_per_execution
from zoo.safety import (
    ReseedEachEpoch,
    Resumable,
    StopOnNonFinite,
    check_matmul_precision,
    check_resumable,
    check_trainer,
    is_global_zero,
    resume_wandb,
)
from zoo.tasks.base import SupervisedTask
from zoo.tracking import finish_wandb

log = logging.getLogger(__name__)

# A task per kind of data, and tasks a model may ask for by name (``model.task``) on data of a kind it accepts.
TASKS = {
    CLASSIFICATION: "zoo.tasks.classification.ClassificationTask",
    REGRESSION: "zoo.tasks.regression.RegressionTask",
    SEGMENTATION: "zoo.tasks.segmentation.SegmentationTask",
    DETECTION: "zoo.tasks.detection.DetectionTask",
    "triplet": "zoo.tasks.triplet.TripletTask",
}
MODELS_FOR = {
    CLASSIFICATION: "model=logistic or model=mlp",
    REGRESSION: "model=linear or model=mlp",
    SEGMENTATION: "model=unet",
    DETECTION: "model=detector",
}
RUN_MARKERS = ("config.yaml", "metrics.json", "checkpoints")


# -- entry points ------------------------------------------------------------------------------------------


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit ``cfg.model`` on ``cfg.data``, test the best checkpoint, write the run folder; returns test metrics."""
    cv = cfg.get("cv") or {}
    if cv.get("folds") is not None and cv.get("fold") is None:
        from zoo.cv import cross_validate

        return cross_validate(cfg)
    check_trainer(cfg)
    output_dir = check_run_folder_free(cfg) if is_global_zero() else Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg, output_dir)
    if ckpt_path:  # refused before Lightning reads it: unsafe, or another model's
        checkpoint = load_checkpoint(ckpt_path)
        check_resumable(checkpoint, cfg, ckpt_path)
        resume_wandb(cfg, checkpoint)
    prepare_process(cfg.seed)
    datamodule = build_datamodule(cfg.data, cfg.model)
    if cv.get("folds") is not None:  # one fold of a cross-validation: that fold is the validation split
        from zoo.cv import check_folds, hold_out_fold

        hold_out_fold(datamodule, cv.fold, check_folds(cv.folds), cfg.data.get("split_seed", 0))
    task = build_task(cfg, datamodule.spec)
    config = plain_config(cfg)
    resumable = Resumable(output_dir)
    extra = [RunOutputs(output_dir, config), TestReport(output_dir), ReseedEachEpoch(cfg.seed), StopOnNonFinite()]
    extra.append(resumable)
    if cfg.model.get("finetune"):
        extra.append(Finetune(**cfg.model.finetune))
    trainer = build_trainer(cfg, output_dir, config, extra_callbacks=extra)
    claim_run_folder(cfg, config)  # once the data, model and trainer settings hold: a failed start leaves nothing
    if hasattr(datamodule, "write_run_files") and is_global_zero():  # what the data fitted (a tokenizer)
        datamodule.write_run_files(output_dir)
    exit_code = 1  # what W&B records unless the run completes
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        best = next((c.best_model_path for c in trainer.checkpoint_callbacks if getattr(c, "best_model_path", "")), "")
        results = trainer.test(task, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        if results and str(cfg.get("optimized_metric") or "").startswith("val/"):  # a search's objective
            scores = trainer.validate(task, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
            results[0].update(scores[0] if scores else {})
        if hasattr(task.net, "save_pretrained") and trainer.is_global_zero:  # the tested weights, as the hub has them
            task.net.save_pretrained(output_dir / "pretrained", task.input.mean, task.input.std, task.spec.class_names)
        exit_code = 0
        return finish_run(results, output_dir)
    except SystemExit:  # Lightning's answer to Ctrl-C and SIGTERM, once Resumable saved a checkpoint
        if resumable.signal is None:
            raise
        exit_code = resumable.exit_code
        raise resumable.interrupted() from None
    finally:
        finish_wandb(exit_code)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test a checkpoint on the test split of the data it was trained on, with the config stored inside it."""
    check_trainer(cfg)
    output_dir = check_run_folder_free(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    stored = OmegaConf.create(checkpoint["zoo_config"])
    data_cfg = OmegaConf.merge(stored.data, cfg.get("data") or {})
    prepare_process(stored.seed)
    datamodule = build_datamodule(data_cfg, stored.model)
    if type(datamodule).__qualname__ in checkpoint:  # what the data fitted in training (a text tokenizer)
        datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
    task = task_from_checkpoint(checkpoint)
    config = plain_config(cfg)
    trainer = build_trainer(cfg, output_dir, config, extra_callbacks=[TestReport(output_dir)])
    claim_run_folder(cfg, config)
    try:
        results = trainer.test(task, datamodule=datamodule)
        return finish_run(results, output_dir)
    finally:
        finish_wandb()


# -- building blocks ---------------------------------------------------------------------------------------


def build_datamodule(data_cfg: DictConfig, model_cfg: DictConfig) -> L.LightningDataModule:
    """Instantiate the data; ``data.normalize=auto`` standardises each pixel for flat models (their columns) and
    each channel for image nets."""
    if data_cfg.get("normalize") == "auto":
        data_cfg = OmegaConf.merge(data_cfg, {"normalize": "channel" if model_cfg.get("input") == "image" else "pixel"})
    if model_cfg.get("tokenizer") and "tokenizer" in data_cfg:  # a pretrained text model brings its own tokenizer
        data_cfg = data_cfg.copy()
        with open_dict(data_cfg):
            data_cfg.tokenizer = OmegaConf.to_container(model_cfg.tokenizer, resolve=True)
    datamodule = instantiate(data_cfg, _convert_="all")
    datamodule.setup("fit")
    return datamodule


def build_task(cfg: DictConfig, spec: DataSpec) -> SupervisedTask:
    """Pick the task (the model's ``task``, else the data's kind), after checking that the model fits the data."""
    model = cfg.model
    if spec.task not in model.tasks:
        fits = ", ".join(model.tasks)
        raise ZooError(
            f"model={model.name} does {fits} but data={spec.name} is a {spec.task} data set; "
            f"choose a {spec.task} model (e.g. {MODELS_FOR[spec.task]}) or another data set"
        )
    if model.get("input") == "text" and not spec.is_text:
        raise ZooError(
            f"model={model.name} reads text but data={spec.name} is not text; "
            "choose a text data set (text_synth, sarcasm, imdb, text_csv)"
        )
    if spec.is_text and model.get("input") != "text":
        raise ZooError(
            f"model={model.name} cannot read text but data={spec.name} is text; "
            "choose model=text_avgpool, model=rnn or model=transformer"
        )
    if model.get("input") == "image" and not spec.is_image:
        raise ZooError(
            f"model={model.name} needs images but data={spec.name} is a table of {spec.num_features} features; "
            "choose an image data set (digits, mnist5k, mnist, fashion_mnist, cifar10, images) or model=mlp"
        )
    cls = task_class(model.get("task") or spec.task)
    task = cls(
        **task_options(cls, model),
        net=OmegaConf.to_container(model.net, resolve=True),
        spec=spec.to_dict(),
        loss=model.loss,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        l1=model.l1,
        l2=model.l2,
        channels_last=bool(cfg.get("channels_last", False)),
    )
    task.steps_per_execution = check_steps_per_execution(cfg.get("steps_per_execution", 1))
    task.configure_optimizers()  # bad optimizer or scheduler settings are refused now, before the run folder exists
    if cfg.get("compile"):
        task.net.compile()  # in place: checkpoints keep the plain net's parameter names
    return task


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
        logger.log_hyperparams(config)
    return trainer


def task_class(name: str) -> type[SupervisedTask]:
    from hydra.utils import get_class

    if name not in TASKS:
        raise ZooError(f"model.task={name!r} is not a zoo task; choose one of {', '.join(TASKS)} (or leave it out)")
    return get_class(TASKS[name])


def task_options(cls: type[SupervisedTask], model: DictConfig) -> dict[str, Any]:
    """The task's own settings (a triplet margin, a detector's NMS threshold...), read from the model config's
    keys of the same names."""
    shared = inspect.signature(SupervisedTask.__init__).parameters
    own = [
        n for n, p in inspect.signature(cls.__init__).parameters.items() if n not in shared and p.kind == p.KEYWORD_ONLY
    ]
    return {n: OmegaConf.to_object(model[n]) if OmegaConf.is_config(model[n]) else model[n] for n in own if n in model}


def task_from_checkpoint(checkpoint: dict[str, Any]) -> SupervisedTask:
    hparams = checkpoint["hyper_parameters"]
    task = task_class(checkpoint["zoo_config"]["model"].get("task") or hparams["spec"]["task"])(**hparams)
    task.load_state_dict(checkpoint["state_dict"])
    return task


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint cannot run code when it is read."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"ckpt_path: '{path}' not found; give the path of a .ckpt file from a zoo run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or a corrupt file
        raise ZooError(f"ckpt_path: {unsafe_or_corrupt(path, err)}") from None
    if "zoo_config" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ZooError(f"ckpt_path: '{path}' is not a zoo checkpoint (no stored config); give one from a zoo run")
    return checkpoint


def unsafe_or_corrupt(path: Path, err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line."""
    import re

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


def check_run_folder_free(cfg: DictConfig) -> Path:
    """The run folder, refused if an earlier run lives there (nothing is ever overwritten)."""
    output_dir = Path(cfg.paths.output_dir)
    taken = [m for m in RUN_MARKERS if (output_dir / m).exists()]
    if taken:
        raise ZooError(
            f"run folder '{output_dir}' already holds a run ({', '.join(taken)}); nothing was overwritten. "
            "Pick another hydra.run.dir, or resume into a new folder with ckpt_path=PATH or ckpt_path=last"
        )
    return output_dir


def claim_run_folder(cfg: DictConfig, config: dict[str, Any]) -> None:
    """Create the run folder and write ``config`` (``plain_config(cfg)``) there. Under DDP only rank 0 does: the
    other ranks share the folder it claimed."""
    if not is_global_zero():
        return
    output_dir = check_run_folder_free(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, output_dir / "config.yaml")


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
            raise ZooError(f"ckpt_path: '{ckpt_path}' not found; give an existing .ckpt file or ckpt_path=last")
        return str(ckpt_path)
    root = Path(cfg.paths.log_dir) / cfg.name
    found = [p for p in root.rglob("last.ckpt") if output_dir not in p.parents] if root.is_dir() else []
    if not found:
        raise ZooError(f"ckpt_path=last: no last.ckpt under '{root}' for experiment '{cfg.name}'; train it first")
    newest = max(found, key=lambda p: p.stat().st_mtime)
    log.info("resuming from %s", newest)
    return str(newest)


def prepare_process(seed: int) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    _skip_nvml_probe_without_gpu()
    # Lightning prints through its own handler and the root one (Hydra's): keep Hydra's, drop the adverts.
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda rec: "Tip:" not in rec.getMessage())
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


def _skip_nvml_probe_without_gpu() -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 to keep fork safe; with a CUDA build of torch and no GPU,
    every Adam step then loads libnvidia-ml to count devices (0.4 ms a step on a 2-core CPU). With no device
    there is no CUDA context to protect, so the probe is turned off."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def finish_run(results: list[dict[str, Any]], output_dir: Path) -> dict[str, float]:
    metrics = to_float_dict(results[0]) if results else {}
    if not is_global_zero():
        return metrics
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    line = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    print(f"test metrics: {line}\nrun folder: {output_dir}")
    return metrics
