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

from zoo.errors import ZooError

SPLITS = ("val", "test")


def check_ensemble_size(value: Any) -> int:
    """``hparams_search.ensemble``: how many of the best trials to average; 0 or 1 is none."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ZooError(f"hparams_search.ensemble={value!r} is not valid; give how many best trials to average (0: none)")


def probabilities(run_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A classification run's class probabilities and labels on its validation and test splits, by split."""
    from zoo.api import load  # here: the sweeper imports this module for its check, before any run
    from zoo.predict import predictions
    from zoo.run import build_datamodule

    run = load(run_dir)
    config = run.config
    said = logging.getLogger("zoo.data")  # what reading the data showed (dropped columns...): its trial said it
    level = said.level
    said.setLevel(logging.ERROR)
    try:
        data = build_datamodule(config.data, config.model)  # its splits, preprocessed as in training
    finally:
        said.setLevel(level)
    return {split: (predictions(run.task, data.splits[split][0]), data.splits[split][1]) for split in SPLITS}


def ensemble_of(run_dirs: Sequence[Path]) -> dict[str, float]:
    """``val/acc`` and ``test/acc`` of the average of the runs' class probabilities."""
    runs = [probabilities(Path(d)) for d in run_dirs]
    scores = {}
    for split in SPLITS:
        labels = runs[0][split][1]
        if any(not torch.equal(run[split][1], labels) for run in runs):
            raise ZooError(f"the trials' {split} splits differ; an ensemble needs one data.split_seed for all")
        mean = torch.stack([run[split][0] for run in runs]).mean(0)
        scores[f"{split}/acc"] = (mean.argmax(1) == labels).float().mean().item()
    return scores


def write_ensemble(sweep: Path, rows: list[dict[str, Any]], size: int) -> str | None:
    """The ``size`` best finished trials of ``rows`` (best first, as ``results.csv``) averaged: ``ensemble.json``
    and the line that says what it reached; None where there is nothing to average (fewer than two finished
    classification trials)."""
    members = [r for r in rows if r["status"] == "ok" and isinstance(r.get("test/acc"), float)][:size]
    if size < 2 or len(members) < 2:
        return None
    scores = ensemble_of([Path(r["run_dir"]) for r in members])
    jobs = [r["job"] for r in members]
    record = {**scores, "jobs": jobs, "run_dirs": [r["run_dir"] for r in members]}
    (sweep / "ensemble.json").write_text(json.dumps(record, indent=2))
    return (
        f"ensemble of the {len(members)} best trials (jobs {', '.join(map(str, jobs))}, their class probabilities "
        f"averaged): val/acc = {scores['val/acc']:.4f}, test/acc = {scores['test/acc']:.4f}; {sweep / 'ensemble.json'}"
    )
