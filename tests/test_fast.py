"""The fast path: several optimiser steps per Lightning step give the run one step at a time gives, resume, fall
back where they cannot hold; data stays on the GPU only when it fits; the benchmark runs."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch

from zoo.data.batches import TensorBatches
from zoo.data.device import fits_on_device, keep_on_device
from zoo.errors import ZooError
from zoo.tasks.classification import ClassificationTask

# Dropout (random draws), L2, a step schedule and a last group shorter than the others: all must match K=1.
RUN = ("model.net.dropout=0.2", "model.l2=1e-3", "data.batch_size=64")
STEP = ("scheduler=step", "scheduler.step_size=1")
PLATEAU = ("scheduler=plateau", "+scheduler.mode=max", "scheduler.patience=0")  # val/loss falls: halves every epoch


def history(folder):
    return list(csv.DictReader((folder / "history.csv").open()))


@pytest.mark.parametrize("schedule", [STEP, PLATEAU], ids=["step", "plateau"])
def test_steps_per_execution_gives_the_same_run_as_one_step_at_a_time(train_run, schedule):
    one, one_dir = train_run(*RUN, *schedule, "trainer.max_epochs=3", "steps_per_execution=1", folder="one")
    six, six_dir = train_run(*RUN, *schedule, "trainer.max_epochs=3", "steps_per_execution=6", folder="six")
    assert six == pytest.approx(one, abs=1e-6)
    rows_one, rows_six = history(one_dir), history(six_dir)
    assert {"train/loss", "train/acc", "train/penalty", "val/loss"} <= set(rows_six[0])
    assert [r["step"] for r in rows_six] == [r["step"] for r in rows_one] == ["20", "40", "60"]  # optimiser steps
    assert [r["lr"] for r in rows_six] == [r["lr"] for r in rows_one]  # the schedule stepped once an epoch
    for a, b in zip(rows_one, rows_six, strict=True):
        assert {k: float(v) for k, v in b.items()} == pytest.approx({k: float(v) for k, v in a.items()}, abs=1e-6)


def test_a_resumed_fast_run_ends_where_an_uninterrupted_one_does(train_run):
    run = ("recipe=none", "model.l2=1e-3", "data.batch_size=64", *STEP)  # no dropout: the RNG's state is not saved
    whole, _ = train_run(*run, "trainer.max_epochs=4", "steps_per_execution=4", folder="whole")
    train_run(*run, "trainer.max_epochs=2", "steps_per_execution=4", folder="first")
    resumed, folder = train_run(*run, "trainer.max_epochs=4", "steps_per_execution=4", "ckpt_path=last", folder="next")
    assert resumed == pytest.approx(whole, abs=1e-6)
    rows = history(folder)
    assert [r["step"] for r in rows] == ["20", "40", "60", "80"]
    assert [float(r["lr"]) for r in rows] == [0.001, 0.0005, 0.00025, 0.000125]  # the rate each epoch trained at


@pytest.mark.parametrize(
    "setting, reason",
    [
        ("+trainer.gradient_clip_val=1", "trainer.gradient_clip_val"),
        ("+trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches"),
        ("+trainer.limit_train_batches=3", "a debug setting"),
    ],
)
def test_settings_that_count_lightning_steps_fall_back_to_one_step(train_run, caplog, setting, reason):
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.grouped"):
        metrics, _ = train_run(setting, "trainer.max_epochs=1", "steps_per_execution=8")
    assert f"steps_per_execution=8 falls back to 1: {reason}" in caplog.text
    assert "test/acc" in metrics  # it ran to the end (Lightning refuses clipping/accumulation with manual steps)


@pytest.mark.parametrize("value", [0, -2, "fast", 1.5])
def test_a_bad_steps_per_execution_is_a_one_line_error(train_run, value):
    with pytest.raises(ZooError, match=f"steps_per_execution={value!r} is not valid; use a positive integer"):
        train_run(f"steps_per_execution={value}")


def test_grouped_batches_are_the_same_mini_batches_in_the_same_order():
    x, y = torch.arange(52.0).view(26, 2), torch.arange(26)  # six batches of 4 and one of 2
    single = list(TensorBatches(x, y, 4, shuffle=True, seed=3))
    grouped = TensorBatches(x, y, 4, shuffle=True, seed=3, group=3)
    groups = list(grouped)
    assert len(grouped) == len(groups) == 3 and [len(g) for g in groups] == [3, 3, 1]
    flat = [batch for group in groups for batch in group]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(single, flat, strict=True))


def test_data_moves_to_a_gpu_only_when_it_fits_there():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert fits_on_device(1_000, cuda, free_bytes=10_000)
    assert not fits_on_device(6_000, cuda, free_bytes=10_000)  # more than half the free memory: stays on the host
    assert not fits_on_device(1_000, cpu, free_bytes=None)
    splits = {"train": (torch.zeros(4, 2), torch.zeros(4))}
    assert keep_on_device(splits, cpu) is splits  # on a CPU nothing moves, and no GPU is needed to decide


@pytest.mark.slow
def test_compile_true_trains_the_same_net_and_its_checkpoint_evaluates(train_run, tmp_path):
    from tests.conftest import compose
    from zoo.run import evaluate

    plain, _ = train_run("trainer.max_epochs=2", folder="plain")
    compiled, folder = train_run("trainer.max_epochs=2", "compile=true", folder="compiled")
    assert compiled["test/acc"] == pytest.approx(plain["test/acc"], abs=0.02)
    best = next((folder / "checkpoints").glob("best-*.ckpt"))  # what the run tested
    cfg = compose([f"ckpt_path={best}"], tmp_path, config_name="eval", folder="eval")
    assert evaluate(cfg)["test/acc"] == pytest.approx(compiled["test/acc"], abs=1e-6)  # plain parameter names


@pytest.mark.slow
def test_the_benchmark_measures_every_side_on_a_tiny_case(tmp_path):
    from benchmarks.cases import mlp
    from benchmarks.run import summarise

    sides = mlp.measure(2, tmp_path, overrides=("data.n_samples=700",))
    assert {"zoo", "hand-written", "lightning-dataloader", "keras"} <= set(sides)
    assert all(len(seconds) == 2 for side, seconds in sides.items() if side != "keras")
    rows = summarise("mlp", sides)
    assert rows[0][:2] == ("mlp", "zoo") and rows[0][3].startswith("zoo/hand-written ")


@pytest.mark.slow
def test_the_text_benchmark_compares_each_model_with_its_own_peers(tmp_path):
    from benchmarks.cases import text
    from benchmarks.run import summarise

    sides = text.measure(2, tmp_path, overrides=("data.count=600",))
    sides_of = {
        f"{side}:{model}" for side in ("zoo", "hand-written", "keras", "lightning-dataloader") for model in text.MODELS
    }
    assert set(sides) == sides_of
    notes = {side: note for _, side, _, note in summarise("text", sides)}
    for model in text.MODELS:
        assert notes[f"zoo:{model}"].startswith("zoo/hand-written ")
        assert notes[f"lightning-dataloader:{model}"].startswith(f"lightning-dataloader:{model}/zoo ")


def test_the_text_benchmarks_keras_nets_compute_zoos_nets(tmp_path):
    """Keras' text_avgpool and LSTM, loaded with zoo's initial weights, give zoo's outputs on real token ids (padding
    masked out of the mean and the final state alike), so the benchmark times the same model on every side."""
    from benchmarks.cases import text  # first: it sets KERAS_BACKEND=torch

    keras = pytest.importorskip("keras")  # the bench extra
    from zoo.config import compose_config
    from zoo.run import build_datamodule, build_task

    for name, model in text.MODELS.items():
        cfg = compose_config([*model, *text.DATA, "data.count=300", "logger=none"], tmp_path / name)
        dm = build_datamodule(cfg.data, cfg.model)
        dm.setup("fit")
        net = build_task(cfg, dm.spec).net.eval()
        ids = dm.splits["train"][0][:64]
        assert (ids == dm.spec.pad_id).any() and dm.spec.pad_id == 0  # padded texts, padded with the masked id
        initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
        ours = keras.ops.convert_to_numpy(text.keras_net(name, initial, ids.shape[1])(ids.numpy()))
        with torch.no_grad():
            assert np.abs(ours - net(ids).numpy()).max() < 1e-5, name


def test_the_lenet5_peers_train_on_the_numbers_zoo_trains_on(tmp_path):
    """The lenet5 benchmark's Lightning peer reads MNIST as lightning-hydra-template does (torchvision's MNIST over
    IDX files, PIL transforms per sample); its images must be the padded, normalised ones the other sides get."""
    from benchmarks.cases import lenet5
    from zoo.config import compose_config
    from zoo.nets.lenet import LeNet5
    from zoo.run import build_datamodule

    cfg = compose_config([*lenet5.OVERRIDES, "trainer.accelerator=cpu"], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    x, y = dm.splits["train"]
    _, prepare = lenet5.hand_net(dm, LeNet5(list(dm.spec.input_shape), 10).state_dict())
    mnist = lenet5.template_mnist(x, y, tmp_path / "data", dm.spec.pixel_mean, dm.spec.pixel_std)
    assert len(mnist) == len(x) == 3500
    for i in (0, 1234, 3499):
        image, label = mnist[i]
        assert label == int(y[i])
        assert torch.allclose(image, prepare(x[i : i + 1])[0], atol=1e-5)


class CountHooks(L.Callback):
    """A user's callback on the gradients: the fast path must still call it once per optimiser step."""

    calls: dict[str, int] = {}

    def on_after_backward(self, trainer, pl_module) -> None:
        CountHooks.calls["on_after_backward"] = CountHooks.calls.get("on_after_backward", 0) + 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        CountHooks.calls["on_before_optimizer_step"] = CountHooks.calls.get("on_before_optimizer_step", 0) + 1


def test_gradient_hooks_run_on_every_step_of_a_group(train_run):
    CountHooks.calls = {}
    target = f"+callbacks.count._target_={__name__}.CountHooks"
    train_run(*RUN, "trainer.max_epochs=1", "steps_per_execution=6", target)
    assert CountHooks.calls == {"on_after_backward": 20, "on_before_optimizer_step": 20}  # 20 optimiser steps


def test_without_hooks_a_group_steps_the_optimiser_directly_and_counts_every_step(train_run, monkeypatch):
    from zoo.tasks.grouped import StepCounter

    calls = []
    original = StepCounter.step
    monkeypatch.setattr(StepCounter, "step", lambda self, optimizer: (calls.append(1), original(self, optimizer)))
    _, folder = train_run(*RUN, "trainer.max_epochs=2", "steps_per_execution=6")
    assert len(calls) == 40 and [r["step"] for r in history(folder)] == ["20", "40"]  # global_step counts them


class OwnStep(ClassificationTask):
    """A task with a training step of its own (here: a label-smoothed loss); the fast path must run it per step."""

    steps: int = 0

    def training_step(self, batch, batch_idx):
        OwnStep.steps += 1
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y, label_smoothing=0.1)


def test_a_task_with_its_own_training_step_keeps_the_fast_path(train_run, monkeypatch):
    from zoo.tasks.grouped import StepCounter

    direct = []
    original = StepCounter.step
    monkeypatch.setattr(StepCounter, "step", lambda self, optimizer: (direct.append(1), original(self, optimizer)))
    task = f"model.tasks.classification={__name__}.OwnStep"
    OwnStep.steps = 0
    grouped, folder = train_run(*RUN, "trainer.max_epochs=2", "steps_per_execution=6", task, folder="six")
    assert OwnStep.steps == len(direct) == 40 and [r["step"] for r in history(folder)] == ["20", "40"]
    OwnStep.steps = 0
    one, _ = train_run(*RUN, "trainer.max_epochs=2", "steps_per_execution=1", task, folder="one")
    assert OwnStep.steps == 40 and grouped == pytest.approx(one, abs=1e-6)  # its own loss, the same steps


@pytest.mark.parametrize("k", [1, 6])
def test_step_logging_can_be_turned_off(train_run, k):
    metrics, _ = train_run(*RUN, "trainer.max_epochs=1", "trainer.log_every_n_steps=0", f"steps_per_execution={k}")
    assert "test/acc" in metrics  # Lightning's "never log steps" is no division by zero


def test_the_loggers_step_axis_counts_optimiser_steps_as_one_step_at_a_time_does(train_run):
    def logged(folder, key):
        rows = list(csv.DictReader((folder / "csv" / "metrics.csv").open()))
        return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]

    run = (*RUN, "trainer.max_epochs=3", "trainer.log_every_n_steps=5", "logger=csv")
    _, one = train_run(*run, "steps_per_execution=1", folder="one")
    _, six = train_run(*run, "steps_per_execution=16", folder="six")  # a group spans several multiples of 5
    assert [s for s, _ in logged(six, "val/loss")] == [s for s, _ in logged(one, "val/loss")] == [19, 39, 59]
    steps = logged(one, "train/loss_step")  # every 5 optimiser steps
    assert [s for s, _ in steps] == list(range(4, 60, 5))
    grouped = logged(six, "train/loss_step")  # W&B plots both runs alike
    assert [s for s, _ in grouped] == [s for s, _ in steps]
    assert [v for _, v in grouped] == pytest.approx([v for _, v in steps], abs=1e-5)


@pytest.mark.parametrize(
    "overrides, fused",
    [((), True), (("+optimizer.fused=false",), False), (("optimizer=momentum",), None), (("optimizer=rmsprop",), None)],
    ids=["adam", "turned-off", "sgd-on-a-cpu", "rmsprop-has-none"],
)
def test_optimizers_take_torchs_fused_kernel_unless_told_not_to(tmp_path, overrides, fused):
    from tests.conftest import compose
    from zoo.run import build_datamodule, build_task

    cfg = compose(["recipe=none", *overrides], tmp_path)  # the model's own optimizer, without a schedule
    optimizer = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec).configure_optimizers()
    if fused is None:  # SGD's fused kernel is left to GPUs; RMSprop has none
        assert not optimizer.defaults.get("fused")
    else:
        assert optimizer.defaults["fused"] is fused


def _stock(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` with each ``zoo.nets.fast_ops`` module turned back into the ``nn`` module it replaces."""
    import copy

    from zoo.nets import fast_ops

    stock = copy.deepcopy(net)
    for module in stock.modules():
        for fast in (fast_ops.Tanh, fast_ops.AvgPool2d, fast_ops.Conv2d, fast_ops.Dropout):
            if type(module) is fast:
                module.__class__ = fast.__mro__[1]
    return stock


def _forward_backward(net, x):
    x = x.clone().requires_grad_()
    y = net(x)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y, x.grad, [p.grad for p in net.parameters()]


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_lenet5s_fast_layers_compute_what_torchs_own_do(variant):
    """tanh as 2 sigmoid(2x) - 1 (AVX-512 CPUs), 2x2 average pooling as four strided quarters, C5 as the dense layer
    it is: outputs, input and weight gradients as torch's nn.Tanh, nn.AvgPool2d and nn.Conv2d give them."""
    from zoo.nets.fast_ops import _avx512
    from zoo.nets.lenet import LeNet5

    torch.manual_seed(0)
    net = LeNet5([1, 32, 32], 10, variant=variant)
    x = torch.randn(16, 1, 32, 32) * 3
    fast, stock = _forward_backward(net, x), _forward_backward(_stock(net), x)
    torch.testing.assert_close(fast[0], stock[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(fast[1], stock[1], rtol=1e-4, atol=1e-6)
    for a, b in zip(fast[2], stock[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert net.state_dict().keys() == _stock(net).state_dict().keys()  # checkpoints load either way

    # the fast paths were taken (the classic variant has all three)
    x = x.requires_grad_()
    f = net.features
    assert type(f.c5(torch.randn(16, 16, 5, 5)).grad_fn).__name__ != "ConvolutionBackward0"
    if variant == "classic":
        assert type(f.s2(f.act1(f.c1(x))).grad_fn).__name__ == "_AvgPool2x2Backward"
        assert (type(f.act1(f.c1(x)).grad_fn).__name__ == "_SigmoidTanhBackward") == _avx512()


FALLBACKS = {
    "pool_odd_sizes": ("pool", (4, 3, 9, 9), torch.contiguous_format, torch.float32),
    "pool_channels_last": ("pool", (4, 3, 8, 8), torch.channels_last, torch.float32),
    "pool_float64": ("pool", (4, 3, 8, 8), torch.contiguous_format, torch.float64),
    "pool_unbatched": ("pool", (3, 8, 8), torch.contiguous_format, torch.float32),
    "tanh_float64": ("tanh", (4, 3, 8, 8), torch.contiguous_format, torch.float64),
    "conv_input_wider_than_its_kernel": ("conv", (4, 3, 8, 8), torch.contiguous_format, torch.float32),
    "dropout_float64": ("dropout", (4, 3, 8, 8), torch.contiguous_format, torch.float64),
}


@pytest.mark.parametrize("layer, shape, memory_format, dtype", FALLBACKS.values(), ids=FALLBACKS.keys())
def test_fast_layers_are_torchs_own_where_their_shortcut_does_not_hold(layer, shape, memory_format, dtype):
    from zoo.nets.fast_ops import AvgPool2d, Conv2d, Dropout, Tanh

    torch.manual_seed(0)
    fast = {"pool": AvgPool2d(2), "tanh": Tanh(), "conv": Conv2d(3, 4, 3), "dropout": Dropout(0.5)}[layer].to(dtype)
    x = torch.randn(shape, dtype=dtype)
    x = (x.to(memory_format=memory_format) if x.dim() == 4 else x).requires_grad_()
    torch.manual_seed(1)
    y = fast(x)
    torch.manual_seed(1)
    expected = _stock(fast)(x)
    assert torch.equal(y, expected)
    assert type(y.grad_fn) is type(expected.grad_fn)  # the same autograd node: torch's own op ran


def test_dropout_drops_each_value_with_probability_p_and_scales_the_rest_as_torchs_does():
    """The CPU's dropout from bulk random bits: about p of the values zeroed, the others scaled by 1/(1 - p) (the
    mean kept), the gradient through the same mask, the same mask again for the same seed; eval mode, p=0 and
    inplace=True are torch's own."""
    from zoo.nets.fast_ops import Dropout
    from zoo.nets.mlp import MLP

    x = torch.ones(256, 1024, requires_grad=True)
    for p in (0.1, 0.3, 0.5, 0.8):
        torch.manual_seed(0)
        y = Dropout(p)(x)
        assert type(y.grad_fn).__name__ == "_DropoutBackward"
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.005, (p, dropped)
        assert torch.allclose(y[y != 0], torch.tensor(1 / (1 - p)), rtol=1e-4)
        assert abs(y.mean().item() - 1) < 0.02
        (grad,) = torch.autograd.grad(y, x, torch.full_like(y, 2.0))
        assert torch.equal(grad, 2 * y)  # the kept values' scale, zero where dropped
        torch.manual_seed(0)
        assert torch.equal(Dropout(p)(x), y)
    rows = Dropout(0.5)(torch.ones(4096, 4))  # column j takes bits 16j..16j+15 of each 64-bit word: all random
    assert ((rows == 0).float().mean(0) - 0.5).abs().max() < 0.03
    assert torch.equal(Dropout(0.5).eval()(x), x) and torch.equal(Dropout(0.0)(x), x)
    assert type(Dropout(0.5, inplace=True)(x.detach().clone()).grad_fn) is type(None)
    mlp = MLP(8, 3, hidden=[16], dropout=0.2)
    assert type(mlp.dropout1) is Dropout and isinstance(mlp.dropout1, torch.nn.Dropout)


def test_average_pooling_passes_back_the_gradient_torchs_own_does():
    """2x2 pooling's backward as two row copies: each input pixel gets exactly a quarter of its window's gradient,
    on LeNet-5's two map sizes and a non-square one."""
    from zoo.nets.fast_ops import AvgPool2d

    torch.manual_seed(0)
    for shape in ((8, 6, 28, 28), (8, 16, 10, 10), (2, 3, 4, 6)):
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)
        fast, stock = AvgPool2d(2), _stock(AvgPool2d(2))
        y = fast(x)
        assert type(y.grad_fn).__name__ == "_AvgPool2x2Backward"
        (ours,) = torch.autograd.grad(y, x, grad)
        (torchs,) = torch.autograd.grad(stock(x), x, grad)
        assert ours.is_contiguous() and torch.equal(ours, torchs)


@pytest.mark.parametrize(
    "args, line",
    [
        (["--epochs", "0"], "run.py: error: argument --epochs: '0' is not valid; give a whole number of at least 1"),
        (["--rounds", "x"], "run.py: error: argument --rounds: 'x' is not valid; give a whole number of at least 1"),
        (
            ["--out", "/nonexistent/r.md"],
            "run.py: error: --out /nonexistent/r.md: not a file in an existing folder; "
            "give a path such as /tmp/results.md",
        ),
    ],
    ids=["epochs", "rounds", "out"],
)
def test_the_benchmark_refuses_bad_arguments_before_it_measures(monkeypatch, capsys, args, line):
    from benchmarks import run

    monkeypatch.setattr(sys, "argv", ["run.py", "mlp", *args])
    with pytest.raises(SystemExit) as stop:
        run.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == line


@pytest.mark.parametrize("args", [["--help"], ["--out", "/nonexistent/r.md"]], ids=["help", "out"])
def test_the_startup_benchmark_answers_its_command_line_without_measuring(monkeypatch, capsys, args):
    """``--help`` prints the usage and a bad ``--out`` is refused in one line, each before a run is timed or
    results.md is touched."""
    from benchmarks import startup

    monkeypatch.setattr(sys, "argv", ["startup.py", *args])
    monkeypatch.setattr(startup, "timed", lambda *a, **k: pytest.fail("measured"))
    with pytest.raises(SystemExit) as stop:
        startup.main()
    out, err = capsys.readouterr()
    if args == ["--help"]:
        assert stop.value.code == 0 and "--out OUT" in out
    else:
        assert stop.value.code == 2
        assert err.splitlines()[-1] == (
            "startup.py: error: --out /nonexistent/r.md: not a file in an existing folder; "
            "give a path such as /tmp/results.md"
        )


def test_the_startup_benchmark_writes_its_section_into_the_file_out_names(monkeypatch, tmp_path):
    """The table goes into ``--out``, results.md untouched (the measured processes stand in: seconds and output)."""
    from benchmarks import startup

    phases = {"imports (torch, Lightning, Hydra, zoo)": 2.5, "training": 2.0, "total": 5.0, "peak memory MB": 800}
    printed = {
        "scripts/train.py": "test metrics: test/acc=0.9861  test/f1=0.9860",
        "benchmarks/peers/keras_digits.py": "test accuracy 0.9694, test loss 0.1",
        startup.__file__: json.dumps(phases),
    }
    monkeypatch.setattr(startup, "timed", lambda script, *a, **k: (6.0 if "keras" in script else 5.0, printed[script]))
    results = startup.ROOT / "benchmarks" / "results.md"
    before = results.read_text()
    out = tmp_path / "r.md"
    monkeypatch.setattr(sys, "argv", ["startup.py", "--out", str(out)])
    startup.main()
    section = out.read_text()
    assert "## Start-up and the default run, CPU" in section and "| 5.0 s (best of 2) | 0.9861 |" in section
    assert "| **whole process** | **5.00 s** (peak memory 800 MB) |" in section
    assert results.read_text() == before


def test_the_benchmark_keeps_the_latest_reading_of_each_kind_of_machine():
    from benchmarks.run import HEADER, with_section

    both = with_section(with_section(HEADER, "## CPU\n\nold cpu\n"), "## GPU\n\ngpu\n") + "\n## GPU options\n\nkept\n"
    again = with_section(both, "## CPU\n\nnew cpu\n")
    assert "new cpu" in again and "old cpu" not in again and "gpu" in again and "kept" in again
    assert again.index("## CPU") < again.index("## GPU") and with_section(again, "## CPU\n\nnew cpu\n") == again


def fashion_files(root):
    """Fashion-MNIST's IDX files as Debian ships them (gzipped), real MNIST pixels inside."""
    from tests.formats import real_digits, write_idx

    for prefix, n, offset in (("train", 400, 0), ("t10k", 100, 400)):
        write_idx(root / "FashionMNIST" / "raw", prefix, *real_digits(n, offset), compress=True)
    return root


@pytest.mark.slow
def test_the_fashion_benchmark_times_both_sides_to_the_same_test_accuracy(tmp_path):
    """Each side's epochs and its test accuracy after each; the report gives the time each needs to the best
    accuracy both reach, their ratio, and the accuracy-against-time figure."""
    from benchmarks.cases import fashion

    data = fashion_files(tmp_path / "data")
    sides = fashion.measure(3, tmp_path / "work", overrides=(f"paths.data_dir={data}", "data.download=false"))
    assert {"zoo", "acc:zoo", "keras", "acc:keras"} <= set(sides)
    assert all(len(sides[k]) == 3 for k in ("zoo", "acc:zoo", "keras", "acc:keras"))
    assert all(0 <= a <= 1 for a in sides["acc:zoo"] + sides["acc:keras"]) and max(sides["acc:zoo"]) > 0.5
    table, last = fashion.report([sides], tmp_path)
    common = min(max(sides["acc:zoo"]), max(sides["acc:keras"]))
    assert last.startswith(f"keras/zoo time to test/acc {common:.4f}: ")
    keras_time = fashion.time_to(common, sides["keras"], sides["acc:keras"])
    assert float(last.rsplit(" ", 1)[1]) == pytest.approx(
        keras_time / fashion.time_to(common, sides["zoo"], sides["acc:zoo"]), abs=0.01
    )
    assert [row.split(" | ")[0] for row in table[2:4]] == ["| zoo", "| keras"] and fashion.FIGURE in table[-1]
    assert (tmp_path / fashion.FIGURE).stat().st_size > 10_000


def test_time_to_accuracy_is_the_training_time_until_the_first_epoch_that_reaches_it():
    from benchmarks.cases.fashion import time_to

    assert time_to(0.9, [10.0, 12.0, 11.0], [0.85, 0.91, 0.93]) == 22.0
    assert time_to(0.95, [10.0, 12.0, 11.0], [0.85, 0.91, 0.93]) is None


def test_the_fashion_benchmark_without_the_data_says_how_to_fetch_it_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from benchmarks import run

    out = tmp_path / "results.md"
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "argv", ["run.py", "fashion", "--out", str(out)])
    run.main()
    printed = capsys.readouterr().out.splitlines()
    folder = tmp_path / "empty" / "FashionMNIST" / "raw"
    assert printed == [
        f"fashion: skipped: no Fashion-MNIST in {folder}; fetch it with: make data "
        "(or python scripts/fetch_data.py fashion_mnist)",
        "fashion: nothing measured",
    ]
    assert not out.exists()


def test_the_fashion_benchmark_runs_experiment_fashion_fasts_own_epochs():
    from benchmarks.cases import fashion
    from zoo.config import compose_config

    assert compose_config(fashion.OVERRIDES).trainer.max_epochs == fashion.EPOCHS


@pytest.mark.slow
def test_the_default_runs_keras_peer_trains_the_same_job_and_writes_its_curve(tmp_path):
    """benchmarks/startup.py times this script beside the default run: it must do the whole job it stands for."""
    pytest.importorskip("keras")  # the bench extra
    from tests.test_cli import ENV, ROOT

    proc = subprocess.run([sys.executable, "benchmarks/peers/keras_digits.py", str(tmp_path / "out")], cwd=ROOT,
                          env=ENV, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[2].rstrip(",")) > 0.9  # "test accuracy 0.9694, test loss 0.1..."
    assert (tmp_path / "out" / "learning_curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_startup_breakdown_runs_the_whole_default_run_and_its_phases_add_up(tmp_path):
    """benchmarks/startup.py --phases runs scripts/train.py itself, bare: every output written, each phase timed
    once."""
    from tests.test_cli import ENV, ROOT

    proc = subprocess.run([sys.executable, "benchmarks/startup.py", "--phases"], cwd=ROOT,
                          env={**ENV, "ZOO_LOG_DIR": str(tmp_path)}, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    phases = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("imports", "Hydra composition", "data", "trainer and W&B start", "training", "figures", "W&B finish"):
        assert any(k.startswith(name) for k in phases), name
    seconds = {k: v for k, v in phases.items() if k not in ("total", "peak memory MB")}
    assert min(seconds.values()) >= 0 and sum(seconds.values()) == pytest.approx(phases["total"], rel=0.02)
    (run,) = tmp_path.glob("*/runs/*")
    assert json.loads((run / "metrics.json").read_text())["test/acc"] >= 0.986
    assert {"learning_curves.png", "confusion_matrix.png", "config.yaml"} <= {p.name for p in run.iterdir()}
    assert next((run / "wandb").glob("offline-run-*")).is_dir()


def test_a_script_collects_only_what_its_work_makes_and_leaves_the_collector_on():
    import gc
    import weakref

    from zoo.cli import collect_new_objects_only

    class Node:
        pass

    gc.disable()  # as a script's start leaves it, for its imports
    try:
        with collect_new_objects_only():
            assert gc.isenabled() and gc.get_freeze_count() > 0
            node = Node()
            node.me = node  # a cycle: only the collector frees it
            made = weakref.ref(node)
            del node
        assert gc.isenabled() and made() is None  # collected on the way out
    finally:
        gc.unfreeze()
        gc.enable()
