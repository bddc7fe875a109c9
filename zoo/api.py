"""zoo from Python and Jupyter: :func:`fit` trains and tests as ``python scripts/train.py`` does (the same configs,
checks, one-line errors, run folder, checkpoints and W&B run) and returns a :class:`Run`; :func:`load` gives the
Run of an earlier run folder or checkpoint. ``fit(net=...)`` trains a ``torch.nn.Module`` of your own.

    import zoo
    run = zoo.fit(model="mlp", data="digits", trainer={"max_epochs": 20})
    run.history.plot()                    # loss and metrics per epoch, as Keras' History
    run.predict(images)                   # new inputs, preprocessed as in training
    run                                   # in Jupyter: the metrics and the run's figures

Keyword arguments are the command line's overrides: ``model="mlp"`` is ``model=mlp`` and nested dicts name keys,
``trainer={"max_epochs": 5}`` is ``trainer.max_epochs=5``; strings such as ``"optimizer.lr=0.01"`` work as well.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from zoo.callbacks import to_float_dict
from zoo.cli import check_overrides
from zoo.config import build_datamodule, compose_config, with_recipe
from zoo.console import logger_level
from zoo.errors import ZooError
from zoo.nets.given import class_name, give
from zoo.outputs import RunFolder
from zoo.predict import check_pixels, check_predictable, predict_rows, read_inputs
from zoo.run import Trained, load_checkpoint, restore_datamodule, run_training, task_from_checkpoint
from zoo.spec import check_same_inputs

FAST = "ZOO_FAST"  # ZOO_FAST=1: every fit stops after FAST_EPOCHS epochs (the notebooks' runs in CI)
FAST_EPOCHS = 2
FIGURES_FIRST = ("learning_curves", "overfitting", "confusion_matrix", "predictions")


def fit(*overrides: str, net: nn.Module | None = None, quiet: bool = True, **options: Any) -> Run:
    """Train and test as ``python scripts/train.py OVERRIDES`` would, in a new run folder; returns the :class:`Run`.

    ``net``: a module of your own (a ``zoo.Sequential`` of lazy layers, a ``zoo.Model``, a subclass of
    ``nn.Module``), trained in place with zoo's task for the data (``model=net``): it must take a batch of the
    data's inputs and give one output per class (or target). ``quiet``: a line per epoch (as Keras prints them)
    instead of progress bars, the model summary and Lightning's messages."""
    args = [*overrides, *as_overrides(options)]
    if {"-m", "--multirun"} & set(args):
        raise ZooError("zoo.fit trains one run; for a sweep loop over zoo.fit, or use scripts/train.py --multirun")
    if net is not None:
        if any(a.split("=", 1)[0] == "model" for a in args):
            raise ZooError("give a model (model=...) or a net of your own (net=...), not both")
        name = class_name(net)
        short = name.rsplit(".", 1)[-1]
        args = ["model=net", f"model.name={short}", f"model.net.token={give(net)}", f"model.net.name={name}", *args]
    args, recipe = with_recipe(args)
    if recipe is not None and recipe.overrides:  # a recipe the arguments give in full says nothing
        print(recipe.line())
    check_overrides("train", args)
    cfg = compose_config(args, folder=None)
    with open_dict(cfg):
        cfg.paths.output_dir = str(free_folder(Path(cfg.paths.output_dir)))
        if os.environ.get(FAST) == "1":  # a quick look: every run of a notebook in a few seconds
            epochs = cfg.trainer.get("max_epochs") or -1
            cfg.trainer.max_epochs = FAST_EPOCHS if epochs < 0 else min(epochs, FAST_EPOCHS)
    if not quiet:
        return Run.of(run_training(cfg))
    with open_dict(cfg):
        callbacks = cfg.callbacks if isinstance(cfg.get("callbacks"), DictConfig) else OmegaConf.create()
        cfg.callbacks = dict(callbacks)
        cfg.callbacks.progress_bar = {"_target_": "zoo.display.ProgressBar", "live": False}
        if cfg.callbacks.get("model_summary"):  # written to the run folder; run.net shows it in a notebook
            cfg.callbacks.model_summary.show = False
        cfg.trainer.enable_model_summary = False
    with lightning_quiet():
        return Run.of(run_training(cfg))


def load(path: str | Path, net: nn.Module | None = None) -> Run:
    """The :class:`Run` of a run folder (its best checkpoint, else ``last.ckpt``) or of a checkpoint file, loaded
    safely (``torch.load(weights_only=True)``: a checkpoint cannot run code). A run that trained a net of your own
    needs that module again, built the same way: ``zoo.load(path, net=MyNet(...))``."""
    path = Path(path)
    if path.is_dir():
        file, folder = RunFolder(path).tested_checkpoint(), path
    elif path.is_file():
        file, folder = path, path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise ZooError(f"'{path}' not found; give a zoo run folder (logs/<name>/runs/<time>) or a .ckpt file")
    checkpoint = load_checkpoint(file)
    if net is not None:
        give(net, checkpoint["hyper_parameters"]["net"].get("token"))
    task = task_from_checkpoint(checkpoint)
    return Run(folder, task, restore_datamodule(checkpoint))


class Run:
    """A trained and tested run: its folder, metrics, history, config, the trained task and net (on the CPU, in
    eval mode), and prediction on new inputs with the run's own preprocessing. Jupyter shows it with its figures."""

    @classmethod
    def of(cls, trained: Trained) -> Run:
        return cls(trained.folder.path, trained.task, trained.datamodule, trained.metrics)

    def __init__(self, folder: Path, task: Any, datamodule: Any, metrics: dict[str, float] | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.task = task.cpu().eval() if task is not None else None
        self.datamodule = datamodule
        self.metrics = metrics if metrics is not None else RunFolder(self.folder).read_metrics()

    @property
    def net(self) -> nn.Module | None:
        return self.task.net if self.task is not None else None

    @property
    def config(self) -> DictConfig:
        """The composed config the run trained with (its ``config.yaml``)."""
        return OmegaConf.load(self.folder / "config.yaml")

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch (counted from 1): the training and validation metrics and the learning rate."""
        path = self.folder / "history.csv"
        if not path.is_file():
            return pd.DataFrame()
        return pd.read_csv(path).drop(columns=["step"], errors="ignore").set_index("epoch")

    @property
    def figures(self) -> list[Path]:
        """The run's figures, the learning curves first."""
        found = {p.stem: p for p in sorted(self.folder.glob("*.png"))}
        return [found[k] for k in FIGURES_FIRST if k in found] + [p for k, p in found.items() if k not in FIGURES_FIRST]

    def predict(self, inputs: Any, batch_size: int = 1024) -> pd.DataFrame:
        """Predictions for new inputs, one row each (the class and its probability, and every class's; or the
        targets). ``inputs``: image files or a folder, a CSV or text file; a DataFrame (a table's columns);
        texts; arrays of raw pixels 0..255 ``[N, C, H, W]`` (or ``[N, H, W]``, flat rows ``[N, C*H*W]``, one
        image), of a table's feature values, or of ids."""
        if self.task is None:
            raise ZooError("this run has no trained model to predict with (a cross-validation: predict with a fold)")
        check_predictable(self.task)
        names, encoded = self._encode(inputs)
        rows = predict_rows(self.task, self.datamodule, names, encoded, batch_size)
        return pd.DataFrame(rows).set_index("input")

    def _encode(self, inputs: Any) -> tuple[list[str], Any]:
        spec = self.task.spec
        if isinstance(inputs, str | Path):
            return read_inputs(Path(inputs), spec, self.datamodule)
        if hasattr(inputs, "__len__") and len(inputs) == 0:
            raise ZooError("inputs: nothing to predict (no rows); give at least one input")
        if isinstance(inputs, pd.DataFrame):
            return [str(i) for i in inputs.index], inputs
        if isinstance(inputs, list | tuple) and all(isinstance(i, str | Path) for i in inputs):
            return [str(i) for i in inputs], [Path(i) for i in inputs] if spec.is_image else list(inputs)
        x = torch.as_tensor(np.asarray(inputs))
        names = [str(i) for i in range(len(x))]
        if spec.is_image:
            if x.dim() == 2 and x.shape[1] == spec.num_features:  # flat rows of pixels, as scikit-learn's .data
                x = x.reshape(-1, *spec.input_shape)
            elif list(x.shape) in (spec.input_shape, spec.input_shape[1:]):  # one image: a batch of one
                x = x.reshape(1, *spec.input_shape)
                names = ["0"]
            x = x.unsqueeze(1) if x.dim() == 3 else x
            if list(x.shape[1:]) != spec.input_shape:
                raise ZooError(
                    f"inputs: images {list(x.shape[1:])} but the run trained on {spec.input_shape} [C, H, W]"
                )
            check_pixels(x, spec.pixel_mean)
            return names, x
        if spec.is_text:
            if x.dim() != 2 or x.is_floating_point() or int(x.min()) < 0 or int(x.max()) >= spec.vocab_size:
                raise ZooError(
                    f"inputs: give texts, or token ids as integers [N, length] in 0..{spec.vocab_size - 1} (the "
                    "run's vocabulary)"
                )
            return names, x.long()
        numeric = self.datamodule.preprocessor.state["numeric"]["names"]
        if self.datamodule.preprocessor.state["categorical"] or x.dim() != 2 or x.shape[1] != len(numeric):
            raise ZooError(f"inputs: give a DataFrame with the training columns ({', '.join(numeric)}, ...)")
        return names, pd.DataFrame(x.numpy(), columns=numeric)

    def evaluate(self, *overrides: str, **options: Any) -> dict[str, float]:
        """Test metrics on the test split of the data the run trained on, or of other data settings
        (``data="mnist5k"``, ``data={"test_fraction": 0.5}``), without writing anything."""
        import lightning as L

        if self.task is None:
            raise ZooError("this run has no trained model to evaluate (a cross-validation: evaluate a fold)")
        args = [*overrides, *as_overrides(options)]
        if any(not a.startswith("data") for a in args):
            raise ZooError(f"evaluate takes data settings only (data=NAME, data.KEY=VALUE), not {args}")
        stored = self.config
        if any(a.split("=", 1)[0] == "data" for a in args):
            check_overrides("train", args)
            data_cfg = compose_config(args, folder=None).data
        else:
            data_cfg = OmegaConf.merge(stored.data, OmegaConf.from_dotlist([a.removeprefix("data.") for a in args]))
        datamodule = build_datamodule(data_cfg, stored.model)
        check_same_inputs(self.task.spec, datamodule.spec)
        if type(datamodule) is type(self.datamodule):  # what the data fitted in training (a text tokenizer)
            datamodule.load_state_dict(self.datamodule.state_dict())
        try:
            with lightning_quiet():
                trainer = L.Trainer(
                    logger=False,
                    enable_checkpointing=False,
                    enable_progress_bar=False,
                    enable_model_summary=False,
                    devices=1,
                )
                return to_float_dict(trainer.test(self.task, datamodule=datamodule, verbose=False)[0])
        finally:
            self.task.cpu().eval()

    def show(self) -> None:
        """The metrics and figures, under the cell in Jupyter (printed paths elsewhere)."""
        try:
            from IPython.display import HTML, display
        except ImportError:
            print(f"{self!r}\n" + "\n".join(str(p) for p in self.figures))
            return
        display(HTML(self._repr_html_()))

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in self.metrics.items())
        images = "".join(
            f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" alt="{p.stem}" '
            'style="max-width:100%">'
            for p in self.figures
        )
        return f"<div><b>zoo run</b> <code>{self.folder}</code><table>{rows}</table>{images}</div>"

    def __repr__(self) -> str:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return f"Run('{self.folder}'{', ' if shown else ''}{shown})"


def as_overrides(options: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Keyword arguments as the command line's overrides: ``trainer={"max_epochs": 5}`` -> ``trainer.max_epochs=5``."""
    for key, value in options.items():
        if isinstance(value, Mapping):
            yield from as_overrides(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}={override_value(value)}"


def override_value(value: Any) -> str:
    """A Python value written as Hydra reads it on a command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    plain = text and all(c.isalnum() or c in "_-./:+@~" for c in text) and text not in ("null", "true", "false")
    return text if plain else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lightning_quiet() -> contextlib.AbstractContextManager[None]:
    """Inside the block Lightning says only what goes wrong (no "GPU available" or "Restoring states" lines)."""
    return logger_level("lightning.pytorch", logging.WARNING)


def free_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``... when an earlier run lives there: a cell run twice makes a new run
    folder and overwrites nothing."""
    candidate, n = folder, 1
    while RunFolder(candidate).holds_run():
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate
