"""On a CUDA GPU: the fast path keeps the data there and steps as on the CPU; groups of steps recorded as CUDA graphs
give the run that steps in Python give; bf16, channels_last and torch.compile train, and what they save evaluates on
a machine without a GPU. Skipped where torch sees no GPU (CI); the rest of
the suite runs on a GPU too where there is one (``trainer.accelerator`` is ``auto``)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = ("trainer.accelerator=gpu", "data.batch_size=64")


def test_the_data_stays_on_the_gpu_and_groups_step_the_optimiser_directly(train_run, monkeypatch):
    import zoo.data.memory
    from zoo.tasks.grouped import StepCounter

    steps, devices = [], set()
    step, keep = StepCounter.step, zoo.data.memory.keep_on_device
    monkeypatch.setattr(StepCounter, "step", lambda self, optimizer: (steps.append(1), step(self, optimizer)))

    def kept(splits, device):
        splits = keep(splits, device)
        devices.update(t.device.type for pair in splits.values() for t in pair if isinstance(t, torch.Tensor))
        return splits

    monkeypatch.setattr(zoo.data.memory, "keep_on_device", kept)
    grouped, _ = train_run(*GPU, "trainer.max_epochs=15", "cuda_graphs=false", folder="grouped")
    assert len(steps) == 300 and devices == {"cuda"}  # 20 optimiser steps an epoch, none through the wrapper
    one, _ = train_run(*GPU, "trainer.max_epochs=15", "steps_per_execution=1", folder="one")
    assert grouped["test/acc"] >= 0.94
    assert grouped == pytest.approx(one, abs=1e-4)  # the same steps as one at a time


def test_bf16_channels_last_and_compile_train_and_the_checkpoint_evaluates_on_a_cpu(train_run, tmp_path):
    from tests.conftest import compose
    from zoo.run import evaluate

    fast = ("trainer.precision=bf16-mixed", "channels_last=true", "compile=true")
    metrics, folder = train_run(*GPU, "model=lenet5", "data=mnist5k", "trainer.max_epochs=3", *fast)
    assert metrics["test/acc"] >= 0.9
    best = next((folder / "checkpoints").glob("best-*.ckpt"))
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)  # the plain net's names: loads without compile
    cfg = compose([f"ckpt_path={best}", "trainer.accelerator=cpu"], tmp_path, config_name="eval", folder="eval")
    assert evaluate(cfg)["test/acc"] == pytest.approx(metrics["test/acc"], abs=0.02)  # fp32 on the CPU vs bf16


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_pictures_are_shuffled_and_augmented_on_the_gpu_without_waiting_for_it(train_run, tmp_path, in_memory):
    """The epoch's order and each batch's crop offsets and flips reach the GPU from pinned memory, queued behind the
    work there: CUDA's sync debug mode reports no synchronising call from zoo's batching or augmentation."""
    from benchmarks.common import cuda_syncs
    from tests.formats import write_image_folder

    pictures = write_image_folder(tmp_path / "pictures", per_class=30)
    overrides = ["data=images", f"data.path={pictures}", "data.image_size=16", f"data.in_memory={in_memory}"]
    augment = ["data.augment.crop_padding=2", "data.augment.hflip=true", "data.num_workers=0"]
    with cuda_syncs() as places:
        metrics, _ = train_run(*overrides, *augment, "model=cnn", "trainer.max_epochs=3", "trainer.accelerator=gpu")
        torch.ones(1, device="cuda").item()  # a sync the check must see
    assert places, "sync debug mode reported nothing: the check itself is broken"
    assert not [place for place in places if place.split(":")[0] in ("augment.py", "batches.py")]
    assert metrics["test/acc"] >= 0.9


@pytest.mark.parametrize(
    "model",
    [
        ("model=mlp", "model.net.dropout=0.2", "data.augment.crop_padding=1", "scheduler=cosine"),
        ("model=text_avgpool", "data=text_synth", "data.count=2000"),
    ],
    ids=["mlp", "text_avgpool"],
)
def test_recorded_cuda_graphs_give_the_run_that_steps_in_python_give(train_run, monkeypatch, model):
    import zoo.tasks.graphed

    records = []
    record = zoo.tasks.graphed.CudaRecorder.record
    monkeypatch.setattr(
        zoo.tasks.graphed.CudaRecorder, "record", staticmethod(lambda fn: (records.append(1), record(fn))[1])
    )
    run = (*GPU, "recipe=none", *model, "trainer.max_epochs=4", "steps_per_execution=4")
    graphed, _ = train_run(*run, "cuda_graphs=true", folder="graphed")
    assert records == [1, 1]  # the full groups and the epoch's last one, each recorded once, then replayed
    eager, _ = train_run(*run, "cuda_graphs=false", folder="eager")
    assert graphed == pytest.approx(eager, abs=1e-4)  # the same steps; float rounding may differ in the last digits
