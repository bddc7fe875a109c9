"""Groups of steps recorded as a CUDA graph and replayed (``cuda_graphs``): the same run as steps in Python, the
learning-rate schedule reaching the recorded update, falling back in one line where a graph cannot hold.

A CUDA graph records only on a GPU. On the CPU, :class:`EmulatedRecorder` stands in for ``torch.cuda.graph`` with
its semantics: recording runs the steps' Python once, and each replay runs the work again on the same fixed buffers
and refills the recorded outputs in place, its Python effects dropped. So everything zoo does around the graph (the
plans, the buffers, the sums and step values read after each replay, the step count, the learning rate as a tensor)
is tested here; ``tests/test_gpu.py`` records real graphs where there is a GPU.
"""

from __future__ import annotations

import csv
import logging

import lightning as L
import pytest
import torch

import zoo.tasks.graphed
from zoo.errors import ZooError

# Dropout, L2, augmentation (each batch's crop offsets), a schedule that changes the learning rate every epoch, and
# a last group of another shape (20 steps an epoch in groups of 4, the last batch short). Epoch 1: a warm-up group,
# one recorded and 2 replays, the last group warms up; epoch 2: 4 replays, the last group recorded; epoch 3: 5 replays.
RUN = (
    "recipe=none",
    "model.net.dropout=0.2",
    "model.l2=1e-3",
    "data.batch_size=64",
    "data.augment.crop_padding=1",
    "scheduler=cosine",
    "trainer.max_epochs=3",
    "steps_per_execution=4",
    "trainer.log_every_n_steps=5",
    "logger=csv",
)


class EmulatedGraph:
    def __init__(self, fn, outputs) -> None:
        self.fn, self.outputs, self.fresh = fn, outputs, True

    def replay(self) -> None:
        EmulatedRecorder.replays += 1
        if self.fresh:  # recording ran this group's work already
            self.fresh = False
            return
        refill(self.outputs, self.fn())


class EmulatedRecorder:
    """``torch.cuda.graph``'s semantics on the CPU (see the module's docstring)."""

    device_type = "cpu"
    records = replays = 0

    @staticmethod
    def warm_up(fn):
        return fn()

    @staticmethod
    def record(fn):
        EmulatedRecorder.records += 1
        outputs = fn()
        return EmulatedGraph(fn, outputs), outputs


def refill(recorded, new) -> None:
    """What a replay does to a graph's outputs: the same tensors, new values; everything else as recorded."""
    if isinstance(recorded, torch.Tensor):
        recorded.copy_(new)
    elif isinstance(recorded, dict):
        assert recorded.keys() == new.keys()
        for key in recorded:
            refill(recorded[key], new[key])
    elif isinstance(recorded, tuple | list):
        for a, b in zip(recorded, new, strict=True):
            refill(a, b)
    else:
        assert recorded == new  # a count of samples: fixed by the recorded shapes


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setattr(zoo.tasks.graphed, "recorder_for", lambda device: EmulatedRecorder)
    EmulatedRecorder.records = EmulatedRecorder.replays = 0
    return EmulatedRecorder


def rows(path):
    return list(csv.DictReader(path.open()))


def logged(folder, key):
    return [(int(r["step"]), float(r[key])) for r in rows(folder / "csv" / "metrics.csv") if r.get(key)]


def test_recorded_groups_give_the_run_that_steps_in_python_give(train_run, emulated):
    graphed, folder = train_run(*RUN, folder="graphed")
    assert emulated.records == 2 and emulated.replays == 3 + 5 + 5
    eager, eager_folder = train_run(*RUN, "cuda_graphs=false", folder="eager")
    assert emulated.records == 2  # nothing recorded with cuda_graphs=false
    assert graphed == pytest.approx(eager, abs=1e-6)
    history, eager_history = rows(folder / "history.csv"), rows(eager_folder / "history.csv")
    assert [r["step"] for r in history] == ["20", "40", "60"]  # every replayed step counted
    assert len({r["lr"] for r in history}) == 3  # the schedule moved the recorded update's learning rate
    for a, b in zip(history, eager_history, strict=True):
        assert {k: float(v) for k, v in a.items()} == pytest.approx({k: float(v) for k, v in b.items()}, abs=1e-6)
    steps = logged(folder, "train/loss_step")  # step values from inside the replays, at the steps Lightning writes
    assert [s for s, _ in steps] == [s for s, _ in logged(eager_folder, "train/loss_step")] == list(range(4, 60, 5))
    assert [v for _, v in steps] == pytest.approx([v for _, v in logged(eager_folder, "train/loss_step")], abs=1e-6)
    state = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    group = state["optimizer_states"][0]["param_groups"][0]
    assert type(group["lr"]) is float and group["capturable"] is False  # resumes anywhere, with any optimiser


class FreezeFirstLayer(L.Callback):
    """From the second epoch on, the net's first weights stop training (as a fine-tune's freezing does)."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            next(pl_module.net.parameters()).requires_grad_(False)


def test_weights_frozen_mid_run_are_recorded_again_and_the_run_stays_the_one_in_python(train_run, emulated):
    freeze = f"+callbacks.freeze._target_={__name__}.FreezeFirstLayer"
    graphed, _ = train_run(*RUN, freeze, folder="graphed")
    # the full groups in epoch 1 and again in epoch 2 (after one group in Python); the last group first in epoch 2
    assert emulated.records == 3
    eager, _ = train_run(*RUN, freeze, "cuda_graphs=false", folder="eager")
    assert graphed == pytest.approx(eager, abs=1e-6)


def test_a_recording_that_fails_falls_back_in_one_line_and_the_run_goes_on(train_run, emulated, monkeypatch, caplog):
    def fails(fn):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(EmulatedRecorder, "record", staticmethod(fails))
    with caplog.at_level(logging.INFO, logger="zoo.tasks.graphed"):
        graphed, _ = train_run(*RUN, "cuda_graphs=true", folder="graphed")
    expected = (
        "cuda_graphs falls back to steps one at a time in Python: recording the steps failed: CUDA error: operation "
        "not permitted when stream is capturing (test_graphs.py:"  # where it failed, outside torch
    )
    assert [m for m in caplog.messages if m.startswith(expected) and m.endswith(" in fails)")], caplog.messages
    eager, _ = train_run(*RUN, "cuda_graphs=false", folder="eager")
    assert graphed == pytest.approx(eager, abs=1e-6)  # the warm-up and the fallback are the same steps


@pytest.mark.parametrize(
    "setting, reason",
    [
        (
            ("optimizer=sgd", "optimizer._target_=torch.optim.Adagrad", "~optimizer.momentum"),
            "Adagrad cannot step inside a CUDA graph here (Adam, AdamW and SGD with its fused kernel can)",
        ),
        (("steps_per_execution=1",), "steps_per_execution is 1 here"),
        (("trainer.precision=bf16-mixed",), "Lightning's optimiser wrapper runs on every step here"),
    ],
    ids=["optimizer", "one-step", "mixed-precision"],
)
def test_cuda_graphs_true_says_why_a_run_cannot_record(train_run, emulated, caplog, setting, reason):
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.graphed"):
        metrics, _ = train_run(*RUN, "trainer.max_epochs=1", *setting, "cuda_graphs=true")
    assert any(m.startswith("cuda_graphs") and reason in m for m in caplog.messages), caplog.messages
    assert emulated.records == 0 and "test/acc" in metrics  # trained without a graph


def test_without_a_gpu_cuda_graphs_true_says_so_and_auto_says_nothing(train_run, caplog):
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.graphed"):
        train_run(*RUN, "trainer.max_epochs=1", folder="auto")
        assert not caplog.messages
        train_run(*RUN, "trainer.max_epochs=1", "cuda_graphs=true", folder="true")
    assert caplog.messages == [
        "cuda_graphs=true falls back to steps one at a time in Python: CUDA graphs need a CUDA GPU (this run trains "
        "on the cpu; trainer.accelerator=gpu)"
    ]


@pytest.mark.parametrize("value", ["maybe", 2])
def test_a_bad_cuda_graphs_value_is_a_one_line_error(train_run, value):
    message = f"^cuda_graphs={value} is not valid; cuda_graphs takes true, false or auto \\(default auto\\)$"
    with pytest.raises(ZooError, match=message):
        train_run(f"cuda_graphs={value}")


def test_a_failed_recording_raises_the_first_error_and_puts_the_thread_back_on_its_stream(monkeypatch):
    """Ending a capture after an error inside it raises an error of its own, which names no operation, and torch's
    context manager then leaves the thread on the capture stream."""
    streams = []

    class Capture:
        def __init__(self, graph, capture_error_mode) -> None:
            pass

        def __enter__(self) -> None:
            streams.append("capture")

        def __exit__(self, *exc) -> None:
            raise RuntimeError("operation failed due to a previous error during capture")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", object)
    monkeypatch.setattr(torch.cuda, "graph", Capture)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: "main")
    monkeypatch.setattr(torch.cuda, "set_stream", streams.append)

    def step():
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    with pytest.raises(RuntimeError, match="^CUDA error: operation not permitted when stream is capturing$"):
        zoo.tasks.graphed.CudaRecorder.record(step)
    assert streams == ["capture", "main"]
