"""The one writer of a run's folder and of a search's sweep folder: which file holds what. Nothing of an earlier run
is ever overwritten: a folder that holds a run is refused before anything is written.

A run folder (``RunFolder``)::

    config.yaml             the composed config, plain types
    metrics.json            the final metrics (test; cross-validation: means and ``_std``)
    history.csv             one row per epoch, what Keras' History holds
    <name>.png              figures: learning_curves, overfitting, confusion_matrix, predictions, overlays, ...
    <name>.csv              tables: misclassified texts, cv_folds, comparison
    tokenizer.json          what the data fitted that a user may want beside the run
    pretrained/             the tested net as a hub serves it (for model.weights=)
    checkpoints/            Lightning's checkpoints (best, last) and interrupted.ckpt
    fold<i>/                cross-validation: each fold's run folder

A sweep folder (``SweepFolder``): ``jobs.jsonl`` (a row per finished job), ``results.csv``, ``best.yaml``, and each
job's run folder. Kept free of torch: Hydra's sweep callbacks load it at start.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.report import Figure, Table

RUN_MARKERS = ("config.yaml", "metrics.json", "checkpoints")


class RunFolder:
    """A run's folder: every file a run writes goes through here."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def pretrained(self) -> Path:
        return self.path / "pretrained"

    def fold(self, i: int) -> RunFolder:
        return RunFolder(self.path / f"fold{i}")

    def holds_run(self) -> list[str]:
        """What shows that a run lives here (``config.yaml``, ``metrics.json``, ``checkpoints``); empty if none."""
        return [m for m in RUN_MARKERS if (self.path / m).exists()]

    def check_free(self) -> Path:
        """The folder, refused when an earlier run lives there (nothing is ever overwritten)."""
        taken = self.holds_run()
        if taken:
            raise ZooError(
                f"run folder '{self.path}' already holds a run ({', '.join(taken)}); nothing was overwritten. "
                "Pick another hydra.run.dir, or resume into a new folder with ckpt_path=PATH or ckpt_path=last"
            )
        return self.path

    def claim(self, config: dict[str, Any], restart: bool = False) -> None:
        """Create the folder and write the run's ``config.yaml``, once nothing can refuse the run any more
        (``restart``: the same run, started again by torchrun or SLURM, goes on in its own folder)."""
        from omegaconf import OmegaConf

        if not restart:
            self.check_free()
        self.path.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, self.path / "config.yaml")

    def write_metrics(self, metrics: dict[str, float]) -> Path:
        return self.write_text("metrics.json", json.dumps(metrics, indent=2) + "\n")

    def read_metrics(self) -> dict[str, float]:
        """The run's ``metrics.json``; empty where the run did not finish."""
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_history(self, rows: list[dict[str, float]]) -> Path:
        """``history.csv``, replaced whole after every epoch (never half-written)."""
        path = self._file("history.csv")
        tmp = path.with_suffix(".csv.tmp")
        write_csv(tmp, list(dict.fromkeys(key for row in rows for key in row)), rows)
        tmp.replace(path)
        return path

    def write_figure(self, name: str, figure: Figure) -> Path:
        path = self._file(f"{name}.png")
        figure.draw(*figure.args, path, **figure.kwargs)
        return path

    def write_table(self, name: str, table: Table) -> Path:
        path = self._file(f"{name}.csv")
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([table.columns, *table.rows])
        return path

    def write_outputs(self, outputs: dict[str, Figure | Table]) -> dict[str, Path]:
        """A task's test figures and tables; returns ``{name: path}`` of the figures."""
        written = {}
        for name, output in outputs.items():
            if isinstance(output, Figure):
                written[name] = self.write_figure(name, output)
            else:
                self.write_table(name, output)
        return written

    def write_files(self, files: dict[str, str]) -> None:
        """Text files beside the run (``tokenizer.json``)."""
        for name, text in files.items():
            self.write_text(name, text)

    def write_text(self, name: str, text: str) -> Path:
        path = self._file(name)
        path.write_text(text)
        return path

    def _file(self, name: str) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path / name

    def save_pretrained(self, net: Any, mean: list[float], std: list[float], class_names: list[str]) -> Path:
        """The net's tested weights as a hub serves them, in ``pretrained/`` (``zoo.protocols.SavesPretrained``)."""
        return net.save_pretrained(self.pretrained, mean, std, class_names)


class SweepFolder:
    """A multirun's folder: a row per job as each ends, then ``results.csv`` and ``best.yaml``."""

    JOBS = "jobs.jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def add_job(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / self.JOBS).open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def jobs(self) -> list[dict[str, Any]]:
        """The jobs recorded so far."""
        jobs = self.path / self.JOBS
        return [json.loads(line) for line in jobs.read_text().splitlines() if line.strip()] if jobs.is_file() else []

    def write_results(self, rows: list[dict[str, Any]], metric: str | None, minimise: bool) -> dict[str, Any] | None:
        """``results.csv``: every job, best first when ``metric`` is set (pruned trials after the others, failed jobs
        last); ``best.yaml``: the best job's composed config, headed by its overrides. Returns the best row."""
        from omegaconf import OmegaConf

        scored = [r for r in rows if r["objective"] is not None and not math.isnan(r["objective"])]
        if metric:
            scored.sort(key=lambda r: r["objective"] if minimise else -r["objective"])
        done = [r for r in scored if r["status"] == "ok"]  # a pruned trial stopped early: listed, never the best
        ordered = done + [r for r in scored if r not in done] + [r for r in rows if r not in scored]
        columns = list(dict.fromkeys(k for r in ordered for k in r))
        columns = [c for c in columns if c not in ("error", "run_dir")] + ["error", "run_dir"]
        write_csv(self.path / "results.csv", columns, ordered)
        if not metric or not done:
            return None
        best = done[0]
        config_file = Path(best["run_dir"]) / "config.yaml"
        config = OmegaConf.load(config_file) if config_file.is_file() else OmegaConf.create()
        header = f"# best {metric} = {best['objective']:.6g}: job {best['job']}, overrides: {best['overrides']}\n"
        (self.path / "best.yaml").write_text(header + OmegaConf.to_yaml(config))
        return best


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
