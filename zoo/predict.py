"""Predict with a checkpoint on new inputs (image files or a folder of them, a CSV table, lines of text), applying
the preprocessing saved with the run: no training data needed."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from zoo.data.pictures import IMAGE_SUFFIXES, opened
from zoo.data.text import read_table, read_text
from zoo.errors import ZooError
from zoo.outputs import RunFolder
from zoo.run import load_checkpoint, predictions, restore_datamodule, task_from_checkpoint
from zoo.spec import CLASSIFICATION
from zoo.tasks.classification import ClassificationTask
from zoo.tasks.regression import RegressionTask

log = logging.getLogger(__name__)
DARKER = 8  # a batch of pixels this many times darker on average than the training images is warned about

SHOWN_CLASSES = 3  # printed per row: the most probable classes


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Predict ``cfg.input`` with ``cfg.ckpt_path`` (a checkpoint, or a search's ``ensemble.json``: the average of its
    members' class probabilities); print the rows, or write them to ``cfg.output`` (a new CSV)."""
    output = Path(cfg.output) if cfg.get("output") else None
    if output is not None and output.exists():
        raise ZooError(f"output: '{output}' exists; nothing was overwritten. Give a new file name")
    members = []
    for path in checkpoint_paths(Path(str(cfg.ckpt_path))):
        checkpoint = load_checkpoint(path)
        task = task_from_checkpoint(checkpoint).eval()
        check_predictable(task)
        members.append((task, restore_datamodule(checkpoint)))
    spec = members[0][0].spec
    if any(
        (task.spec.class_names, task.spec.target_names) != (spec.class_names, spec.target_names) for task, _ in members
    ):
        raise ZooError(f"ckpt_path: the members of {cfg.ckpt_path} predict different things; give one search's")
    names, inputs = read_inputs(Path(str(cfg.input)), spec, members[0][1])
    outputs = [member_outputs(task, datamodule, inputs, int(cfg.batch_size)) for task, datamodule in members]
    rows = to_rows(names, torch.stack(outputs).mean(0), spec)
    if output is None:
        for row in rows:
            print(format_row(row))
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("x", newline="") as fh:  # "x": never overwrite
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{len(rows)} predictions written to {output}")
    return rows


def check_predictable(task: Any) -> None:
    """Predictions are rows of classes or targets: a detector's boxes, a segmenter's masks and a triplet net's
    embedding (trained on labelled data, but its outputs are no classes) are not."""
    if not isinstance(task, ClassificationTask | RegressionTask):
        kind = type(task).__name__.removesuffix("Task").lower()
        raise ZooError(f"predict handles classification and regression; this is a {kind} model")


def checkpoint_paths(path: Path) -> list[Path]:
    """The checkpoint ``path``, or each member's tested checkpoint where it is a search's ``ensemble.json``."""
    if path.suffix != ".json":
        return [path]
    if not path.is_file():
        raise ZooError(f"ckpt_path: '{path}' not found; give a .ckpt file or a search's ensemble.json")
    try:
        run_dirs = json.loads(path.read_text())["run_dirs"]
    except (ValueError, KeyError, TypeError):
        raise ZooError(f"ckpt_path: '{path}' is not an ensemble.json written by a zoo search (no run_dirs)") from None
    return [RunFolder(Path(d)).tested_checkpoint() for d in run_dirs]


def member_outputs(task: Any, datamodule: Any, inputs: Any, batch_size: int) -> torch.Tensor:
    """``inputs`` encoded by the run's data module (its fitted preprocessing), through the task: class probabilities
    or the predicted targets, one row each."""
    x = inputs if isinstance(inputs, torch.Tensor) else datamodule.encode(inputs)
    return predictions(task, x, batch_size)


def predict_rows(task: Any, datamodule: Any, names: list[str], inputs: Any, batch_size: int) -> list[dict[str, Any]]:
    """One row per input (see :func:`to_rows`) from one run."""
    return to_rows(names, member_outputs(task, datamodule, inputs, batch_size), task.spec)


def check_pixels(x: torch.Tensor, pixel_mean: list[float]) -> None:
    """Arrays of images given to predict hold raw pixels 0..255, as the run trained on (its net normalises them
    itself): normalised values (below 0) or values scaled to 0..1 are refused in one line; a batch far darker than
    the training images (scikit-learn's digits as ``load_digits().images`` give them, 0..16) is warned about."""
    if x.numel() == 0:
        return
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise ZooError(
            f"inputs: pixel values run {low:g}..{high:g}; give raw pixels 0..255 (not normalised ones): the net "
            "normalises them as it did in training"
        )
    if x.is_floating_point() and 0 < high <= 1:
        raise ZooError(
            f"inputs: pixel values run {low:g}..{high:g}, scaled to 0..1; give raw pixels 0..255, e.g. "
            "(x * 255).round().astype('uint8')"
        )
    trained = 255 * sum(pixel_mean) / len(pixel_mean) if pixel_mean else 0.0
    seen = float(x.double().mean())
    if seen * DARKER < trained:
        log.warning(
            "inputs: pixel values run %g..%g with mean %.3g, far darker than the training images' %.3g; raw pixels "
            "0..255 are expected (scikit-learn's digits run 0..16: give images * 255 / 16)",
            low, high, seen, trained,
        )  # fmt: skip


def read_inputs(path: Path, spec: Any, datamodule: Any = None) -> tuple[list[str], Any]:
    """``(names, inputs)`` in the run's own format: image files (a file or a folder of them) for an image model; a
    CSV table's rows for a table model, read with the run's ``data.sep``; for a text model a text file's lines, or
    the run's text column of a CSV/TSV or JSON-lines file like the one it trained on."""
    if not path.exists():
        raise ZooError(f"input: '{path}' not found; give image files or a folder, a CSV file, or a text file")
    if spec.is_image:
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
        if not files or files[0].suffix.lower() not in IMAGE_SUFFIXES:
            raise ZooError(f"input: '{path}' holds no images ({', '.join(IMAGE_SUFFIXES)}); this model takes images")
        check_readable(files)
        return [str(p) for p in files], files
    takes = "texts: a text file, one per line" if spec.is_text else "a CSV table with the columns it trained on"
    if path.is_dir():
        raise ZooError(f"input: '{path}' is a folder; this model takes {takes}")
    if spec.is_text:
        texts = read_texts(path, datamodule, takes)
        return texts, texts
    return read_rows(path, getattr(datamodule, "sep", ","), takes)


def read_rows(path: Path, sep: str, takes: str) -> tuple[list[str], Any]:
    """A CSV (or TSV) file's rows, split as the training table was (``data.sep``); a byte-order mark is dropped."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ZooError(f"input: '{path}' is empty; this model takes {takes}") from None
    except (ValueError, UnicodeDecodeError) as err:
        why = str(err).splitlines()[0]
        raise ZooError(f"input: cannot parse '{path}' as CSV ({why}); this model takes {takes}") from None
    return [str(i) for i in range(len(frame))], frame


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


def read_texts(path: Path, datamodule: Any, takes: str) -> list[str]:
    """A text file's non-blank lines (UTF-8, a byte-order mark dropped); or, from a table of texts, the column the
    run read its texts from (``data.text_column``, split by its ``data.sep``)."""
    columns = getattr(datamodule, "columns", None)  # (text, label) where the data set reads a table
    if path.suffix.lower() in TABLE_SUFFIXES:
        if not columns:
            raise ZooError(f"input: '{path}' is a table; this model takes {takes}")
        return read_table(path, columns[0], columns[0], datamodule.sep).texts  # no labels to predict: text as both
    lines = [line for line in read_text(path, "input").splitlines() if line.strip()]
    if not lines:
        raise ZooError(f"input: '{path}' holds no lines of text")
    return lines


def check_readable(files: list[Path]) -> None:
    """Every image file opens (its header read and checked, nothing decoded): a broken one is a line naming it."""
    for file in files:
        with opened(file, "input") as img:
            img.verify()


def to_rows(names: list[str], outputs: torch.Tensor, spec: Any) -> list[dict[str, Any]]:
    """One row per input: the predicted class and its probability, then every class's; or the predicted targets."""
    rows = []
    for name, out in zip(names, outputs.tolist(), strict=True):
        row: dict[str, Any] = {"input": name}
        if spec.task == CLASSIFICATION:
            best = max(range(len(out)), key=out.__getitem__)
            row["predicted"] = spec.class_names[best]
            row["probability"] = round(out[best], 6)
            row.update({f"p({c})": round(p, 6) for c, p in zip(spec.class_names, out, strict=True)})
        else:
            row.update({t: round(v, 6) for t, v in zip(spec.target_names, out, strict=True)})
        rows.append(row)
    return rows


def format_row(row: dict[str, Any]) -> str:
    name = row["input"] if len(row["input"]) <= 40 else "..." + row["input"][-37:]
    if "predicted" not in row:
        return f"{name}: " + "  ".join(f"{k}={v:g}" for k, v in row.items() if k != "input")
    probs = sorted(((v, k[2:-1]) for k, v in row.items() if k.startswith("p(")), reverse=True)[:SHOWN_CLASSES]
    others = ", ".join(f"{c} {p:.3f}" for p, c in probs)
    return f"{name}: {row['predicted']} ({row['probability']:.3f})  [{others}]"
