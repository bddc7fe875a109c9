"""K-fold cross-validation (``cv.folds=K``): the training and validation splits pooled and cut into K folds
(stratified by class), each held out once as validation; the test split stays the same held-out split.

Each fold is an ordinary run in ``<run folder>/fold<i>`` (its own W&B run, grouped by the experiment); the run
folder gets ``metrics.json`` (each metric's mean over folds, and ``<metric>_std``) and ``cv_folds.csv``.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from omegaconf import DictConfig, open_dict

from zoo.data.spec import CLASSIFICATION
from zoo.errors import ZooError


def check_folds(folds: object) -> int:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ZooError(f"cv.folds={folds!r} is not valid; use an integer >= 2 (or null for no cross-validation)")
    return folds


def hold_out_fold(datamodule: object, fold: int, folds: int, seed: int) -> None:
    """Re-split ``datamodule``'s train+val so that fold ``fold`` of ``folds`` is the validation split."""
    import numpy as np
    import torch
    from sklearn.model_selection import KFold, StratifiedKFold

    splits, spec = getattr(datamodule, "splits", None), datamodule.spec
    if not splits or "val" not in splits:
        raise ZooError(f"cv.folds needs a data set held in memory; data={spec.name} is not one")
    datamodule.require_memory("cv.folds")
    if not 0 <= fold < folds:
        raise ZooError(f"cv.fold={fold} is not valid; use 0 to {folds - 1} (or leave it out: all folds run)")
    (xt, yt), (xv, yv) = splits["train"], splits["val"]
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
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
    train_idx, val_idx = list(splitter.split(np.zeros(len(y)), labels))[fold]
    splits["train"] = (x[train_idx], y[train_idx])
    splits["val"] = (x[val_idx], y[val_idx])
    spec.num_train = len(train_idx)


def cross_validate(cfg: DictConfig) -> dict[str, float]:
    """Train every fold in its own sub-folder; returns the metrics averaged over folds (with ``_std`` beside)."""
    from zoo.run import build_datamodule, check_run_folder_free, claim_run_folder, plain_config, train

    folds = check_folds(cfg.cv.folds)
    output_dir = check_run_folder_free(cfg)
    hold_out_fold(build_datamodule(cfg.data, cfg.model), 0, folds, cfg.data.get("split_seed", 0))  # fail early
    claim_run_folder(cfg, plain_config(cfg))
    rows = []
    for fold in range(folds):
        fold_cfg = cfg.copy()
        with open_dict(fold_cfg):
            fold_cfg.cv.fold = fold
            fold_cfg.paths.output_dir = str(output_dir / f"fold{fold}")
            if fold_cfg.get("logger") and fold_cfg.logger.get("wandb"):
                fold_cfg.logger.wandb.name = f"{cfg.name}-fold{fold}"  # group stays the experiment's name
        print(f"cross-validation: fold {fold + 1}/{folds}")
        rows.append({"fold": fold, **train(fold_cfg)})
    return summarise(rows, output_dir)


def summarise(rows: list[dict[str, float]], output_dir: Path) -> dict[str, float]:
    """Write ``cv_folds.csv`` and ``metrics.json`` (means, ``_std``), print ``metric = mean ± std``."""
    keys = [k for k in rows[0] if k != "fold"]
    with (output_dir / "cv_folds.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["fold", *keys])
        writer.writeheader()
        writer.writerows(rows)
    metrics: dict[str, float] = {}
    for key in keys:
        values = [r[key] for r in rows if key in r]
        metrics[key] = statistics.fmean(values)
        metrics[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    lines = [f"  {k} = {metrics[k]:.4f} ± {metrics[k + '_std']:.4f}" for k in keys]
    print(f"cross-validation over {len(rows)} folds:\n" + "\n".join(lines) + f"\nrun folder: {output_dir}")
    return metrics
