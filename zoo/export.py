"""Export a checkpoint's model for serving: ONNX (checked against PyTorch with onnxruntime), safetensors weights,
or a ``torch.export`` program (``.pt2``). What is exported is the task's ``forward``: for image models raw uint8
pixels in (the normalisation layer included), for tables the encoded rows (``model.json`` holds the fitted
encoding), outputs as in training (logits for classifiers)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from zoo.data.preprocess import MISSING
from zoo.data.tokenize import pad_id_of
from zoo.errors import ZooError
from zoo.outputs import RunFolder
from zoo.run import load_checkpoint, restore_datamodule, task_from_checkpoint
from zoo.spec import CLASSIFICATION, TableSpec

log = logging.getLogger(__name__)

FORMATS = {"onnx": "model.onnx", "safetensors": "model.safetensors", "pt2": "model.pt2"}
ATOL = 1e-4


def export(cfg: DictConfig) -> Path:
    """Write ``cfg.ckpt_path``'s model in ``cfg.format`` into a new folder, with ``model.json`` describing its
    input and outputs; returns the model file."""
    if cfg.format not in FORMATS:
        raise ZooError(f"format={cfg.format} is not valid; choose one of {', '.join(FORMATS)}")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    task = task_from_checkpoint(checkpoint).eval()
    example = example_input(task)
    folder = RunFolder(cfg.paths.output_dir)
    path = folder.check_free() / FORMATS[cfg.format]
    if path.exists():
        raise ZooError(f"'{path}' exists; nothing was overwritten. Pick another hydra.run.dir")
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.format == "onnx":
        export_onnx(task, example, path)
        if cfg.get("check", True):
            error = onnx_max_error(task, path, example)
            log.info("onnxruntime vs PyTorch: max abs difference %.2e (tolerance %.0e)", error, ATOL)
    elif cfg.format == "safetensors":
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in task.state_dict().items()}
        save_file(state, str(path), metadata={"zoo_config": json.dumps(checkpoint["zoo_config"])})
    else:
        try:
            with quiet_exporters():
                program = torch.export.export(task, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception as err:  # noqa: BLE001 - code torch.export cannot trace (a bidirectional RNN's packing)
            raise does_not_export("pt2", err, "safetensors") from None
        torch.export.save(program, str(path))
    info = describe(task, example, checkpoint)
    if task.spec.is_text:  # the ids the model takes come from the run's tokenizer: it travels with the model
        info["text"] = text_encoding(restore_datamodule(checkpoint), folder)
    folder.write_text("model.json", json.dumps(info, indent=2) + "\n")
    print(f"exported {cfg.format}: {path}")
    return path


def example_input(task: torch.nn.Module) -> torch.Tensor:
    """A batch the task's forward accepts (its ``example_input_array``), with varied values."""
    example = getattr(task, "example_input_array", None)
    if not isinstance(example, torch.Tensor):
        raise ZooError(f"{type(task).__name__} declares no example_input_array; it cannot be exported")
    gen = torch.Generator().manual_seed(0)
    if example.dtype == torch.uint8:
        return torch.randint(0, 256, (3, *example.shape[1:]), generator=gen, dtype=torch.uint8)
    if example.dtype.is_floating_point:
        return torch.randn((3, *example.shape[1:]), generator=gen, dtype=example.dtype)
    return example.repeat(2, *[1] * (example.ndim - 1))[:3]  # token ids and the like: keep valid values


def export_onnx(task: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """``torch.onnx.export`` (the dynamo exporter) with a dynamic batch dimension."""
    try:
        with quiet_exporters():
            program = torch.onnx.export(
                task,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
    except Exception as err:  # an operator ONNX lacks, or code torch.export cannot trace
        # Step 1 of the exporter's 3 is torch.export itself (TorchExportError), which format=pt2 would run again
        fix = "safetensors" if type(err).__name__ == "TorchExportError" else "pt2"
        raise does_not_export("onnx", err, fix) from None
    program.save(str(path))


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """Silence the exporters' own progress: the ONNX exporter's and its optimiser's passes (printed and logged) and
    torch's notes on the code it traced (warnings about torch internals, such as nn.RNN's flat weights). What the
    export makes is checked after, and a failure is one line."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx", "torch.export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def does_not_export(fmt: str, err: BaseException, fix: str) -> ZooError:
    """One line for an export that failed: the innermost error's first line (exporters wrap the one that names the
    operator or the code), without the terminal colours some put in their messages, and the format to try."""
    while err.__cause__ is not None:
        err = err.__cause__
    reason = (re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines() or [type(err).__name__])[0]
    return ZooError(f"format={fmt}: this model does not export ({reason}); try format={fix}")


def onnx_max_error(task: torch.nn.Module, path: Path, example: torch.Tensor) -> float:
    """Run the ONNX file with onnxruntime on ``example`` (and a batch of another size); the largest absolute
    difference from PyTorch, refused above ``ATOL``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    error = 0.0
    for batch in (example, example[:1]):
        with torch.no_grad():
            expected = task(batch)
        (got,) = session.run(None, {session.get_inputs()[0].name: batch.numpy()})
        error = max(error, float((torch.from_numpy(got) - expected).abs().max()))
    if error > ATOL:
        raise ZooError(f"format=onnx: onnxruntime differs from PyTorch by {error:.2e} (> {ATOL}); use format=pt2")
    return error


def describe(task: Any, example: torch.Tensor, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What a serving program needs to know: input shape and type, what the outputs mean."""
    spec = task.spec
    return {
        "model": checkpoint["zoo_config"]["model"]["name"],
        "data": spec.name,
        "task": spec.task,
        "input": {"shape": ["batch", *example.shape[1:]], "dtype": str(example.dtype).replace("torch.", "")},
        "output": output_meaning(task),
        "class_names": spec.class_names,
        "target_names": spec.target_names,
        "target_mean": spec.target_mean,
        "target_std": spec.target_std,
        "feature_names": spec.feature_names if isinstance(spec, TableSpec) else [],
        **({"preprocessing": table_preprocessing(checkpoint)} if isinstance(spec, TableSpec) else {}),
    }


def text_encoding(datamodule: Any, folder: RunFolder) -> dict[str, Any]:
    """How texts become the model's input: the run's tokenizer written as ``tokenizer.json`` (Hugging Face
    ``tokenizers``' format: ``Tokenizer.from_file``), then truncated or padded to ``max_length`` ids on
    ``padding_side`` with ``pad_id``, as scripts/predict.py does."""
    datamodule.encode([""])  # sets the run's truncation and padding on the tokenizer, which its file then keeps
    folder.write_text("tokenizer.json", datamodule.tokenizer.to_str(pretty=True))
    return {
        "tokenizer": "tokenizer.json",
        "max_length": datamodule.max_length,
        "padding_side": datamodule.padding_side,
        "pad_id": pad_id_of(datamodule.tokenizer),
        "how": "ids = tokenizers.Tokenizer.from_file('tokenizer.json').encode(text).ids: truncated and padded to "
        "max_length as in training",
    }


def output_meaning(task: Any) -> str:
    if task.spec.task != CLASSIFICATION:
        return "outputs"
    if getattr(task, "loss_name", None) == "bce":  # two classes, one logit
        return "one logit per row: sigmoid(logit) is the probability of class_names[1]"
    return "logits, one per class in class_names order (softmax gives the probabilities)"


ENCODING = (
    "the model takes encoded rows, in feature_names order: each numeric column, missing values replaced by its "
    "median, then (x - mean) / std; 1.0 where it was missing, for the columns whose indicator is true; then one "
    "column per category of each categorical column, 1.0 for the row's value (a missing value is the category "
    "missing_category; an unseen one: all 0.0). "
    "scripts/predict.py and zoo.load(...).predict apply it"
)


def table_preprocessing(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The fitted table encoding stored with the run's data module: what a serving program applies to raw rows
    before the model (image models carry theirs inside the graph)."""
    state = next((v["preprocessor"] for v in checkpoint.values() if isinstance(v, dict) and "preprocessor" in v), {})
    return {
        "how": ENCODING,
        **{k: state[k] for k in ("numeric", "categorical") if k in state},
        "missing_category": MISSING,
    }
