"""The best trials of a search together: the average of their class probabilities (``hparams_search.ensemble=K``).

The trial with the best validation accuracy is one draw among many on a small validation split; the average of the
K best trials' probabilities varies less and is often better on data none of them was chosen by (the ensembles of
AutoGluon and auto-sklearn). Each member is its run's tested checkpoint, read back from its run folder; the
validation and test splits are the run's own (the same split seed in every trial). ``ensemble.json`` in the sweep
folder names the members and both accuracies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from zoo.config import build_datamodule
from zoo.console import logger_level
from zoo.cv import fold_indices, pooled_splits
from zoo.errors import ZooError
from zoo.outputs import RunFolder, SweepFolder
from zoo.run import load_checkpoint, predictions, task_from_checkpoint
from zoo.search import minimised

SPLITS = ("val", "test")


class SweepEnsemble(Callback):
    """Hydra callback of the Optuna searches: when the multirun ends, ``hparams_search.ensemble`` (K >= 2) on a
    search of ``val/acc`` (or ``cv/acc``) averages its K best finished trials and prints one line; an ensemble that
    cannot be built (a member's run folder gone) is one line too, and the results stand."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        size = (config.get("hparams_search") or {}).get("ensemble", 0)  # checked as the search began
        metric = config.get("optimized_metric") or ""
        if size < 2 or not metric.endswith("/acc"):
            return
        sweep = SweepFolder(config.hydra.sweep.dir)
        _, done = sweep.ranked(sweep.jobs(), metric, minimise=minimised(metric))
        try:
            line = write_ensemble(sweep.path, done, size)
        except Exception as err:  # the search's results are written either way
            line = f"ensemble not built: {type(err).__name__}: {err}".splitlines()[0]
        if line:
            print(line)


def probabilities(run_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A classification run's class probabilities and labels, by split: on its validation and test splits; for a
    cross-validation (``cv.folds=K``), each fold's model on the rows it held out (``cv``, all of train+val) and the
    K models' average on the test split."""
    folder = RunFolder(run_dir)
    config = OmegaConf.load(folder.path / "config.yaml")
    with logger_level("zoo.data", logging.ERROR):  # what reading the data showed (dropped columns): its trial said it
        data = build_datamodule(config.data, config.model)  # its splits, preprocessed as in training
    x_test, y_test = data.splits["test"]
    folds = fold_runs(folder, config)
    if not folds:
        task = model_of(folder)
        return {split: (predictions(task, data.splits[split][0]), data.splits[split][1]) for split in SPLITS}
    (xt, yt), (xv, yv) = pooled_splits(data)
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
    held_out = torch.zeros(len(y), data.spec.num_classes)
    tested = []
    for i, fold in enumerate(folds):
        task = model_of(fold)
        _, rows = fold_indices(data.spec, y, i, len(folds), config.data.get("split_seed", 0))
        held_out[rows] = predictions(task, x[rows])
        tested.append(predictions(task, x_test))
    return {"cv": (held_out, y), "test": (torch.stack(tested).mean(0), y_test)}


def fold_runs(folder: RunFolder, config: DictConfig) -> list[RunFolder]:
    """The fold runs of a cross-validation run (all ``cv.folds`` of them), [] for a run of its own."""
    folds = (config.get("cv") or {}).get("folds")
    if folds is None or (config.cv.get("fold") is not None):
        return []
    return [folder.fold(i) for i in range(folds)]


def model_of(folder: RunFolder) -> Any:
    """The task of ``folder``'s tested checkpoint, on the CPU, for inference."""
    return task_from_checkpoint(load_checkpoint(folder.tested_checkpoint())).cpu().eval()


def model_dirs(run_dir: Path) -> list[Path]:
    """The run folders whose models a member averages: its fold runs where it cross-validated, else itself."""
    folder = RunFolder(run_dir)
    return [f.path for f in fold_runs(folder, OmegaConf.load(folder.path / "config.yaml"))] or [folder.path]


def ensemble_of(run_dirs: Sequence[Path]) -> dict[str, float]:
    """``val/acc`` (``cv/acc`` where the runs cross-validated) and ``test/acc`` of the average of the runs' class
    probabilities."""
    runs = [probabilities(Path(d)) for d in run_dirs]
    scores = {}
    for split in runs[0]:
        if any(split not in run for run in runs):
            raise ZooError("the trials were validated differently (cv.folds); an ensemble needs one way for all")
        labels = runs[0][split][1]
        if any(not torch.equal(run[split][1], labels) for run in runs):
            raise ZooError(f"the trials' {split} splits differ; an ensemble needs one data.split_seed for all")
        mean = torch.stack([run[split][0] for run in runs]).mean(0)
        scores[f"{split}/acc"] = (mean.argmax(1) == labels).float().mean().item()
    return scores


def write_ensemble(sweep: Path, done: list[dict[str, Any]], size: int) -> str | None:
    """The ``size`` best of the finished trials ``done`` (best first) averaged: ``ensemble.json`` and the line that
    says what it reached; None where there is nothing to average (fewer than two finished classification trials).
    A cross-validated trial stopped by the budget before its last fold is left out: it scored fewer rows."""
    members, models = [], []  # the trials, best first, and the folders of every model they average
    for row in done:
        dirs = model_dirs(Path(row["run_dir"])) if isinstance(row.get("test/acc"), float) else []
        if dirs and all((d / "metrics.json").is_file() for d in dirs):  # each model trained and tested
            members.append(row)
            models += [str(d) for d in dirs]
        if len(members) == size:
            break
    if len(members) < 2:
        return None
    scores = ensemble_of([Path(r["run_dir"]) for r in members])
    jobs = [r["job"] for r in members]
    record = {**scores, "jobs": jobs, "run_dirs": models}  # every model averaged (each fold's, in a cross-validation)
    (sweep / "ensemble.json").write_text(json.dumps(record, indent=2))
    held_out = "cv" if "cv/acc" in scores else "val"
    folds = f", each the {len(models) // len(members)} models of its folds" if held_out == "cv" else ""
    return (
        f"ensemble of the {len(members)} best trials (jobs {', '.join(map(str, jobs))}{folds}, their class "
        f"probabilities averaged): {held_out}/acc = {scores[f'{held_out}/acc']:.4f}, "
        f"test/acc = {scores['test/acc']:.4f}; {sweep / 'ensemble.json'}"
    )
