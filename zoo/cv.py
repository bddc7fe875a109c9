"""K-fold cross-validation (``cv.folds=K``): the training and validation splits pooled and cut into K folds
(stratified by class), each held out once as validation; the test split stays the same held-out split.

Each fold is an ordinary run in ``<run folder>/fold<i>`` (``zoo.run.cross_validate``), scored on the fold it held
out (``cv/<metric>``) and on the test split (``test/<metric>``); the run folder gets ``metrics.json`` (each metric's
mean over folds, and ``<metric>_std``), ``cv_folds.csv`` and ``cv_folds.png``.
"""

from __future__ import annotations

import statistics
from typing import Any

from zoo.errors import ZooError
from zoo.outputs import RunFolder
from zoo.plots import CURVE_METRICS, plot_folds
from zoo.protocols import SplitsInMemory
from zoo.report import Figure, Table
from zoo.spec import CLASSIFICATION


def check_folds(folds: object) -> int:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ZooError(
            f"cv.folds={folds!r} is not valid; use an integer >= 2 (or null for no cross-validation; auto is for "
            "hparams_search=auto)"
        )
    return folds


def hold_out_fold(datamodule: Any, fold: int, folds: int, seed: int) -> None:
    """Re-split ``datamodule``'s train+val so that fold ``fold`` of ``folds`` is the validation split."""
    import torch

    splits = datamodule.splits
    (xt, yt), (xv, yv) = pooled_splits(datamodule)
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
    train_idx, val_idx = fold_indices(datamodule.spec, y, fold, folds, seed)
    splits["train"] = (x[train_idx], y[train_idx])
    splits["val"] = (x[val_idx], y[val_idx])
    datamodule.spec.num_train = len(train_idx)


def pooled_splits(datamodule: Any) -> tuple[Any, Any]:
    """The training and validation splits that the folds cut, refused where the data is not held in memory."""
    if not isinstance(datamodule, SplitsInMemory) or "val" not in datamodule.splits:
        raise ZooError(f"cv.folds needs a data set held in memory; data={datamodule.spec.name} is not one")
    datamodule.require_memory("cv.folds")
    return datamodule.splits["train"], datamodule.splits["val"]


def fold_indices(spec: Any, y: Any, fold: int, folds: int, seed: int) -> tuple[Any, Any]:
    """The rows of train+val (labels or targets ``y``) that fold ``fold`` of ``folds`` trains on and holds out:
    stratified by class for a classification, the same for every run with the same ``seed``."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if not 0 <= fold < folds:
        raise ZooError(f"cv.fold={fold} is not valid; use 0 to {folds - 1} (or leave it out: all folds run)")
    labels = y.numpy() if spec.task == CLASSIFICATION else None
    if labels is not None:
        counts = np.bincount(labels, minlength=spec.num_classes)
        smallest = int(counts.argmin())
        if counts[smallest] < folds:
            raise ZooError(
                f"cv.folds={folds} is more than the {counts[smallest]} training+validation samples of class "
                f"'{spec.class_names[smallest]}' (data={spec.name}); use cv.folds <= {counts[smallest]}"
            )
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        if len(y) < folds:
            raise ZooError(f"cv.folds={folds} is more than the {len(y)} training+validation rows; use fewer folds")
        splitter = KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), labels))[fold]


def summarise(rows: list[dict[str, float]], folder: RunFolder) -> dict[str, float]:
    """Write ``cv_folds.csv``, ``cv_folds.png`` and ``metrics.json``, print ``metric = mean ± std``.

    Two estimates, kept apart: ``cv/<metric>``, each fold's score on the samples it held out (what the k-fold picture
    estimates: how a model trained this way does on data it never saw, with the spread over K different splits; that
    fold also chose the epoch whose weights are scored, as a validation split does), and
    ``test/<metric>``, the K models on the one fixed test split (the spread there is the training's alone)."""
    rows = [{("cv/" + k[4:] if k.startswith("val/") else k): v for k, v in r.items()} for r in rows]
    keys = sorted({k for r in rows for k in r if k != "fold"}, key=lambda k: (not k.startswith("cv/"), k))
    folder.write_table("cv_folds", Table(["fold", *keys], [[r["fold"], *(r.get(k, "") for k in keys)] for r in rows]))
    metrics: dict[str, float] = {}
    for key in keys:
        values = [r[key] for r in rows if key in r]
        metrics[key] = statistics.fmean(values)
        metrics[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    folder.write_metrics(metrics)
    shown = next((m for m in (*CURVE_METRICS, "loss") if f"cv/{m}" in metrics), None)
    if shown:
        scores = [(r["fold"], r.get(f"cv/{shown}"), r.get(f"test/{shown}")) for r in rows]
        folder.write_figure("cv_folds", Figure(plot_folds, (scores, shown)))
    held_out = [f"  {k} = {metrics[k]:.4f} ± {metrics[k + '_std']:.4f}" for k in keys if k.startswith("cv/")]
    tested = [f"  {k} = {metrics[k]:.4f} ± {metrics[k + '_std']:.4f}" for k in keys if not k.startswith("cv/")]
    print(
        f"cross-validation over {len(rows)} folds, each scored on the fold it held out:\n" + "\n".join(held_out)
        + "\nthe same models on the fixed test split:\n" + "\n".join(tested) + f"\nrun folder: {folder.path}"
    )  # fmt: skip
    return metrics
