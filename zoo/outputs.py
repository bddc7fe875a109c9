"""The one writer of a run's folder and of a search's sweep folder: which file holds what. Nothing of an earlier run
is ever overwritten: a folder that holds a run is refused before anything is written.

A run folder (``RunFolder``)::

    config.yaml             the composed config, plain types
    metrics.json            the final metrics (test; cross-validation: means and ``_std``)
    history.csv             one row per epoch, what Keras' History holds
    <name>.png              figures: learning_curves, overfitting, confusion_matrix, predictions, overlays, ...
    <name>.gif              animations: gradient_descent (a linear fit's line, step by step)
    <name>.npz              numbers a later figure reads: loss_surface (a linear fit's loss over w and b)
    <name>.csv              tables: misclassified texts, cv_folds, comparison
    tokenizer.json          what the data fitted that a user may want beside the run
    pretrained/             the tested net as a hub serves it (for model.weights=)
    checkpoints/            Lightning's checkpoints (best, last) and interrupted.ckpt
    fold<i>/                cross-validation: each fold's run folder

A sweep folder (``SweepFolder``): ``jobs.jsonl`` (a row per finished job), ``results.csv``, ``best.yaml``, the
figures that draw the jobs together (``overlay.png``, ``complexity.png``, ``weights.png``, ``gd_paths.png``), and
each job's run folder. Kept free of torch: Hydra's sweep callbacks load it at start (the weights figure imports it
when it reads the checkpoints).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.plots.overlay import (
    SweepJob,
    job_labels,
    numeric_setting,
    plot_complexity,
    plot_gd_paths,
    plot_overlay,
    plot_weights,
    varying_keys,
)
from zoo.report import Arrays, Figure, Table

RUN_MARKERS = ("config.yaml", "metrics.json", "checkpoints")
GD_FILES = ("gd_path.csv", "loss_surface.npz")  # what a linear-regression run writes about its gradient descent
PENALTIES = ("model.l1", "model.l2")  # a sweep over these draws the jobs' weights


class RunFolder:
    """A run's folder: every file a run writes goes through here."""

    def __init__(self, path: str | Path, figures: bool = True) -> None:
        self.path = Path(path)
        self.figures = figures  # False: figures are not drawn (``figures=false``), numbers and tables still written

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def tested_checkpoint(self) -> Path:
        """The checkpoint the run was tested with: its best one (the newest, after a resume), else ``last.ckpt``."""
        best = sorted(self.checkpoints.glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
        last = self.checkpoints / "last.ckpt"
        if not best and not last.is_file():
            folds = sorted(p.name for p in self.path.glob("fold*") if (p / "checkpoints").is_dir())
            if folds:
                raise ZooError(
                    f"'{self.path}' is a cross-validation of {len(folds)} folds, each its own run: give one of them, "
                    f"e.g. '{self.path / folds[0]}'"
                )
            raise ZooError(f"'{self.path}' holds no checkpoints/*.ckpt; give a zoo run folder or a .ckpt file")
        return best[-1] if best else last

    @property
    def pretrained(self) -> Path:
        return self.path / "pretrained"

    def fold(self, i: int) -> RunFolder:
        return RunFolder(self.path / f"fold{i}", self.figures)

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

    def write_figure(self, name: str, figure: Figure) -> Path | None:
        """Draw ``figure`` into ``<name>.png``; None, drawing nothing, where the run draws no figures."""
        if not self.figures:
            return None
        path = self._file(f"{name}.{figure.suffix}")
        figure.draw(*figure.args, path, **figure.kwargs)
        return path

    def write_table(self, name: str, table: Table) -> Path:
        path = self._file(f"{name}.csv")
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([table.columns, *table.rows])
        return path

    def write_outputs(self, outputs: dict[str, Figure | Table | Arrays]) -> dict[str, Path]:
        """A task's test figures, tables and arrays; returns ``{name: path}`` of the figures."""
        written = {}
        for name, output in outputs.items():
            if isinstance(output, Figure):
                path = self.write_figure(name, output)
                if path is not None:
                    written[name] = path
            elif isinstance(output, Arrays):
                self.write_arrays(name.removesuffix(".npz"), output)
            else:
                self.write_table(name, output)
        return written

    def write_arrays(self, name: str, arrays: Arrays) -> Path:
        import numpy as np

        path = self._file(f"{name}.npz")
        np.savez(path, **arrays.arrays)
        return path

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

    @staticmethod
    def ranked(
        rows: list[dict[str, Any]], metric: str | None, minimise: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every job, best first when ``metric`` is set (ties: the lower ``val/loss`` first; pruned trials after the
        others, failed jobs last); and the finished ones among them, in that order."""
        scored = [r for r in rows if r["objective"] is not None and not math.isnan(r["objective"])]
        if metric:  # ties (an accuracy on a small validation split often ties) go to the lower validation loss
            scored.sort(key=lambda r: (r["objective"] if minimise else -r["objective"], tie_break(r)))
        done = [r for r in scored if r["status"] == "ok"]  # a pruned trial stopped early: listed, never the best
        return done + [r for r in scored if r not in done] + [r for r in rows if r not in scored], done

    def write_results(self, rows: list[dict[str, Any]], metric: str | None, minimise: bool) -> dict[str, Any] | None:
        """``results.csv``: every job, in :meth:`ranked` order; ``best.yaml``: the best job's composed config, headed
        by its overrides. Returns the best row."""
        from omegaconf import OmegaConf

        ordered, done = self.ranked(rows, metric, minimise)
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

    def usable_jobs(self, rows: list[dict[str, Any]]) -> tuple[list[SweepJob], list[str]]:
        """The jobs the figures compare (finished, with a ``history.csv``: a cross-validated job's first fold's), and
        a note on each one left out."""
        jobs, left_out = [], []
        for row in rows:
            run = Path(row.get("run_dir") or "")
            places = (run / "history.csv", run / "fold0" / "history.csv") if row.get("run_dir") else ()
            history = next((h for h in map(read_history, places) if h), [])
            if row.get("status") == "failed":
                left_out.append(f"job {row['job']} ({row.get('overrides', '')}): failed")
            elif not history:
                left_out.append(f"job {row['job']} ({row.get('overrides', '')}): no history")
            else:
                metrics = {k: v for k, v in row.items() if "/" in k and isinstance(v, int | float)}
                jobs.append(SweepJob(int(row["job"]), row.get("overrides", ""), history, metrics, run))
        return jobs, left_out

    def write_figures(self, rows: list[dict[str, Any]]) -> tuple[list[Path], list[str]]:
        """The figures that draw the jobs together, each where it applies: ``overlay.png`` (2+ jobs' curves),
        ``complexity.png`` (one numeric setting over 3+ jobs), ``weights.png`` (a sweep over ``model.l1``/``l2``),
        ``gd_paths.png`` (linear runs that wrote their gradient descent). Returns the figures written and a line per
        figure that could not be drawn (a figure never stops the sweep's results)."""
        jobs, left_out = self.usable_jobs(rows)
        if len(jobs) < 2:
            return [], []
        overrides = [job.overrides for job in jobs]
        labels = job_labels(overrides)
        note = ("left out: " + "; ".join(left_out)) if left_out else ""
        title = f"{self.path.parent.parent.name}: " if self.path.parent.name == "multiruns" else ""
        varied = ", ".join(varying_keys(overrides)) or "nothing varied"
        figures: dict[str, Any] = {
            "overlay": lambda: Figure(plot_overlay, (jobs, labels), {"title": f"{title}{varied}", "note": note})
        }
        setting = numeric_setting(overrides)
        if setting and len(jobs) >= 3:
            figures["complexity"] = lambda: Figure(plot_complexity, (jobs, *setting), {"note": note})
        if set(PENALTIES) & set(varying_keys(overrides)):
            figures["weights"] = lambda: Figure(plot_weights, (self.job_weights(jobs), labels), {"note": note})
        drawn_paths = [job for job in jobs if all((job.run_dir / name).is_file() for name in GD_FILES)]
        if len(drawn_paths) >= 2:
            figures["gd_paths"] = lambda: self.gd_paths_figure(drawn_paths, jobs, labels, left_out)
        written, problems = [], []
        for name, make in figures.items():
            try:
                figure = make()
                path = self.path / f"{name}.png"
                figure.draw(*figure.args, path, **figure.kwargs)
                written.append(path)
            except Exception as err:  # a figure is a bonus: the results are already written
                reason = str(err).splitlines()[0] if str(err) else ""
                problems.append(f"{name}.png not drawn: {type(err).__name__}{': ' + reason if reason else ''}")
        return written, problems

    def write_summary(self, rows: list[dict[str, Any]]) -> str:
        """``summary.md``: what each job showed (its own ``summary.md``), headed by what varied, so that a comparison
        reads side by side; empty where the jobs wrote none."""
        jobs, _ = self.usable_jobs(rows)
        labels = job_labels([job.overrides for job in jobs])
        parts = [
            f"## {label}\n\n{(job.run_dir / 'summary.md').read_text().split(chr(10), 2)[-1].strip()}"
            for job, label in zip(jobs, labels, strict=True)
            if (job.run_dir / "summary.md").is_file()
        ]
        if not parts:
            return ""
        text = "\n\n".join(parts)
        (self.path / "summary.md").write_text(f"# {', '.join(varying_keys([j.overrides for j in jobs]))}\n\n{text}\n")
        return text

    @staticmethod
    def job_weights(jobs: list[SweepJob]) -> list[Any]:
        """Each job's net weights with 2+ dims (not biases or norm scales), flattened, from its best checkpoint
        (its last one where there is no best)."""
        import numpy as np
        import torch

        weights = []
        for job in jobs:
            folder = job.run_dir / "checkpoints"
            found = sorted(folder.glob("best*.ckpt")) or sorted(folder.glob("last*.ckpt"))
            if not found:
                raise FileNotFoundError(f"job {job.job} has no checkpoint in {folder}")
            state = torch.load(found[-1], map_location="cpu", weights_only=True)["state_dict"]
            tensors = [t.detach().float().flatten() for k, t in state.items() if k.startswith("net.") and t.dim() >= 2]
            weights.append(torch.cat(tensors).numpy() if tensors else np.zeros(0))
        return weights

    @staticmethod
    def gd_paths_figure(drawn: list[SweepJob], jobs: list[SweepJob], labels: list[str], left_out: list[str]) -> Figure:
        """All the jobs' optimiser paths on the first job's loss surface (the jobs share their data, so the surface is
        one), each labelled by what varied and its batch size and learning rate."""
        import numpy as np

        with np.load(drawn[0].run_dir / "loss_surface.npz") as npz:
            surface = {key: npz[key] for key in ("x", "y", "loss", "minimum", "labels")}
        axes = [str(name) for name in surface["labels"].tolist()]
        paths, names = [], []
        for job in drawn:
            rows = read_history(job.run_dir / "gd_path.csv")
            columns = axes if all(a in rows[0] for a in axes) else ["w1", "w2"] if "w2" in rows[0] else ["w", "b"]
            paths.append(np.array([[row[c] for c in columns] for row in rows]))
            label = labels[jobs.index(job)]  # the settings from its config name batch size and lr once
            others = [part for part in label.split(", ") if not part.startswith(("batch_size=", "lr="))]
            names.append(", ".join(filter(None, [job_settings(job.run_dir), *others])) or label)
        missing = [f"job {job.job}: no gradient-descent files" for job in jobs if job not in drawn]
        note = "; ".join(left_out + missing)
        return Figure(plot_gd_paths, (surface, paths, names), {"note": f"left out: {note}" if note else ""})


def job_settings(run_dir: Path) -> str:
    """``"batch 16, lr 0.1"`` from a run's ``config.yaml``: what shapes a gradient-descent path."""
    from omegaconf import OmegaConf

    file = run_dir / "config.yaml"
    if not file.is_file():
        return ""
    config = OmegaConf.load(file)
    batch, lr = OmegaConf.select(config, "data.batch_size"), OmegaConf.select(config, "optimizer.lr")
    parts = [f"batch {batch}" if batch is not None else "", f"lr {lr:g}" if isinstance(lr, int | float) else ""]
    return ", ".join(p for p in parts if p)


def read_history(path: Path) -> list[dict[str, float]]:
    """A ``history.csv`` (or any all-number CSV) as rows of floats, a missing value NaN; empty if there is none."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [
            {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(fh)
        ]


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def tie_break(row: dict[str, Any]) -> float:
    """What orders jobs of equal objective: their validation loss (lower first), jobs without one last."""
    loss = row.get("val/loss")
    return float(loss) if isinstance(loss, int | float) and not math.isnan(loss) else math.inf
