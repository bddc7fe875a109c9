"""Vision end to end: accuracy goals, run-folder figures, evaluation, transfer-learning modes and the offline
transfer-learning demonstration (pretrain -> hub-format folder -> frozen features beat training from scratch)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from tests.conftest import compose
from tests.formats import write_cifar, write_image_folder
from zoo.errors import ZooError
from zoo.run import build_datamodule, build_task, evaluate

TIMM = ["model=timm", "model.backbone=test_resnet", "recipe=none"]  # the mechanics, at the plain settings
SMALL = ["data=digits", "data.train_per_class=10", "data.batch_size=20"]  # 5 steps an epoch


def test_image_run_writes_figures_and_eval_reproduces_it(train_run, tmp_path):
    metrics, out = train_run("model=cnn", "data=digits", "trainer.max_epochs=2")
    assert metrics["test/acc"] > 0.8
    for name in ("confusion_matrix.png", "predictions.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    ckpt = next((out / "checkpoints").glob("best-*.ckpt"))
    cfg = compose([f"ckpt_path={ckpt}"], tmp_path, config_name="eval", folder="eval")
    again = evaluate(cfg)
    assert again == pytest.approx(metrics)
    assert (Path(cfg.paths.output_dir) / "confusion_matrix.png").exists()


@pytest.mark.slow
def test_the_searched_mlp_on_digits_reaches_the_tuned_svm(train_run):
    metrics, _ = train_run("experiment=mlp_digits_tuned")  # the grid search's best: [512, 512], shifts, cosine
    assert metrics["test/acc"] >= 0.986  # seed 42: 0.992; the tuned RBF-SVM on this split: 0.983


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_backbone_never_changes_and_only_the_head_learns(train_run, tmp_path):
    from tests.formats import timm_weights
    from zoo.nets.timm_net import TimmNet

    seen = {}
    original = TimmNet.__init__

    @functools.wraps(original)  # keeps the signature zoo inspects
    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen["before"] = _state(self.model)

    TimmNet.__init__ = spy
    try:
        weights = f"model.weights={timm_weights(tmp_path / 'test_resnet.pth')}"
        _, out = train_run(*TIMM, weights, "model.finetune.mode=frozen", *SMALL, "trainer.max_epochs=2")
    finally:
        TimmNet.__init__ = original
    after = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    changed = {k for k, v in seen["before"].items() if not torch.equal(v, after[f"net.model.{k}"])}
    assert changed == {"fc.weight", "fc.bias"}  # running BN statistics included: frozen means frozen


def test_gradual_unfreezing_adds_the_backbone_at_a_lower_rate(train_run):
    _, out = train_run(
        *TIMM, "model.finetune.mode=gradual", "model.finetune.unfreeze_epoch=1", *SMALL, "trainer.max_epochs=2"
    )
    groups = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"][0]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-3, 1e-4])  # head (decay, no decay), backbone


def test_unknown_backbone_lists_close_names(tmp_path):
    cfg = compose(["model=timm", "model.backbone=resnet181", "data=digits"], tmp_path)
    with pytest.raises(ZooError, match=r"model.backbone='resnet181' is not a timm model; close names: .*resnet18"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


def test_pretrained_from_the_hub_offline_is_one_clear_error(tmp_path):
    cfg = compose([*TIMM, "model.pretrained=true", "data=digits"], tmp_path)
    with pytest.raises(ZooError, match="cannot load pretrained weights from the Hugging Face hub.*model.weights=PATH"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


def test_grey_data_on_an_rgb_weights_file(tmp_path):
    import timm

    rgb = timm.create_model("test_resnet", num_classes=7)
    path = tmp_path / "rgb.safetensors"
    safetensors.torch.save_file(rgb.state_dict(), path)
    cfg = compose([*TIMM, f"model.weights={path}", "data=digits"], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    stem = task.net.model.conv1[0].weight
    assert stem.shape[1] == 1 and torch.allclose(stem, rgb.conv1[0].weight.sum(1, keepdim=True))  # timm's adapter
    assert task.input.mean == [0.5] and task.input.size == (160, 160)  # the backbone's pretrained config
    assert task.net.model.fc.out_features == 10


@pytest.mark.slow
def test_frozen_pretrained_features_beat_training_from_scratch_on_few_labels(train_run):
    _, pre = train_run("experiment=transfer_pretrain", folder="pretrain")
    config = json.loads((pre / "pretrained" / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and config["pretrained_cfg"]["input_size"] == [1, 32, 32]
    assert config["label_names"] == [str(i) for i in range(10)]
    assert (pre / "pretrained" / "model.safetensors").is_file()
    frozen, _ = train_run("experiment=transfer_frozen", f"model.weights={pre / 'pretrained'}", folder="frozen")
    scratch, _ = train_run(
        "experiment=transfer_frozen", "model.weights=null", "model.finetune.mode=full", folder="scratch"
    )
    assert frozen["test/acc"] > scratch["test/acc"] + 0.2  # measured 0.58 against 0.17


def test_pretrained_true_loads_from_the_hugging_face_cache_offline(tmp_path, monkeypatch):
    """The real hub path (timm -> huggingface_hub, HF_HUB_OFFLINE=1) on a cache laid out as a download leaves it."""
    import huggingface_hub.constants
    import timm

    hub_id = timm.models.get_pretrained_cfg("test_resnet").hf_hub_id  # timm/test_resnet.r160_in1k
    snapshot = tmp_path / "hub" / f"models--{hub_id.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    published = timm.create_model("test_resnet")  # stands in for the published ImageNet weights
    safetensors.torch.save_file(published.state_dict(), snapshot / "model.safetensors")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    cfg = compose([*TIMM, "model.pretrained=true", "model.image_size=32", "data=digits"], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    assert torch.allclose(task.net.model.conv1[0].weight, published.conv1[0].weight.sum(1, keepdim=True))
    assert torch.equal(task.net.model.layer1[0].conv1.weight, published.layer1[0].conv1.weight)


@pytest.mark.slow
@pytest.mark.parametrize("model", [["model=resnet"], TIMM])
def test_resnet_and_timm_train_on_every_image_data_set(train_run, tmp_path, mnist_dir, model):
    datas = {
        "digits": [],
        "mnist5k": [],
        "mnist": [f"paths.data_dir={mnist_dir}", "data.download=false"],
        "cifar10": [f"paths.data_dir={write_cifar(tmp_path / 'cifar')}", "data.download=false"],
        "images": [f"data.path={write_image_folder(tmp_path / 'pictures')}", "data.image_size=16"],
    }
    for name, extra in datas.items():
        short = ["trainer.max_epochs=1", "+trainer.limit_train_batches=5", "data.batch_size=16"]
        metrics, out = train_run(*model, f"data={name}", *extra, *short, folder=f"{name}-{model[0]}")
        assert 0 <= metrics["test/acc"] <= 1 and (out / "confusion_matrix.png").is_file(), name


def test_a_frozen_backbone_that_was_never_trained_is_refused(train_run, tmp_path):
    with pytest.raises(ZooError, match=r"^model.finetune.mode=frozen would freeze a random backbone .*model.weights="):
        train_run(*TIMM, "model.finetune.mode=frozen", *SMALL)
    with pytest.raises(ZooError, match="would freeze a random backbone"):  # the experiment's weights left out
        train_run("experiment=transfer_frozen")
    assert not (tmp_path / "logs").exists()


def test_a_run_from_a_weights_folder_records_its_architecture_and_outlives_the_folder(train_run, tmp_path):
    """``model.weights=FOLDER`` builds the architecture the folder's config.json names; config.yaml says so, not the
    default ``model.backbone`` (resnet18) the net never was. The checkpoint holds every weight, so evaluating it
    needs the folder no more: it is rebuilt with the architecture, size and normalisation the folder gave."""
    import yaml

    from zoo.nets.timm_net import TimmNet

    folder = TimmNet([1, 8, 8], 10, backbone="test_resnet", image_size=16).save_pretrained(
        tmp_path / "mine", mean=[0.5], std=[0.25]
    )
    overrides = ("model=timm", f"model.weights={folder}", "data=digits", "recipe=none", "trainer.max_epochs=1")
    metrics, run = train_run(*overrides)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["backbone"] == config["model"]["net"]["backbone"] == "test_resnet"
    folder.rename(tmp_path / "moved")
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    cfg = compose([f"ckpt_path={best}"], tmp_path, config_name="eval", folder="eval")
    assert evaluate(cfg)["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
