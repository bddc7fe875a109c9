"""Deployment: a checkpoint exported to ONNX gives PyTorch's outputs in onnxruntime (raw uint8 pixels in for image
models), to safetensors and torch.export; predict.py reads images, a CSV or text with the run's preprocessing."""

from __future__ import annotations

import csv
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.config import compose_config
from zoo.errors import ZooError
from zoo.export import export
from zoo.outputs import RunFolder
from zoo.predict import predict
from zoo.run import load_checkpoint, task_from_checkpoint

QUICK = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1"]
FAMILIES = {
    "mlp": ["model=mlp", "data=digits"],
    "logistic": ["model=logistic", "data=breast_cancer"],
    "cnn": ["model=cnn", "data=digits"],
    "lenet5": ["model=lenet5", "data=digits"],
    "resnet": ["model=resnet", "data=digits"],
    "unet": ["experiment=unet_shapes", "data.count=40"],
    "detector": ["experiment=detector_boxes", "data.count=40"],
    "elm": ["model=elm", "data=digits"],
}


def checkpoint_of(train_run, overrides: list[str], quick: bool = True) -> Path:
    _, out = train_run(*overrides, *(QUICK if quick else []))
    return out / "checkpoints" / "last.ckpt"


def run_export(ckpt: Path, fmt: str, tmp_path: Path, folder: str = "export") -> Path:
    overrides = [f"ckpt_path={ckpt}", f"format={fmt}"]
    return export(compose_config(overrides, tmp_path / "logs", config_name="export", folder=folder))


@pytest.mark.parametrize("family", [pytest.param(f, marks=[] if f == "mlp" else pytest.mark.slow) for f in FAMILIES])
def test_onnx_export_matches_pytorch_in_onnxruntime(train_run, tmp_path, family):
    import onnxruntime as ort

    ckpt = checkpoint_of(train_run, FAMILIES[family])
    path = run_export(ckpt, "onnx", tmp_path)
    task = task_from_checkpoint(load_checkpoint(ckpt)).eval()
    spec = task.spec
    gen = torch.Generator().manual_seed(1)
    if spec.is_image:  # raw pixels: the exported graph normalises (and resizes) as the model's first layer does
        x = torch.randint(0, 256, (5, *spec.input_shape), generator=gen, dtype=torch.uint8)
    else:
        x = torch.randn(5, *spec.input_shape, generator=gen)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = task(x)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0)
    info = json.loads((path.parent / "model.json").read_text())
    assert info["input"]["dtype"] == ("uint8" if spec.is_image else "float32")


def test_safetensors_and_torch_export_hold_the_same_model(train_run, tmp_path):
    from safetensors.torch import load_file

    ckpt = checkpoint_of(train_run, FAMILIES["cnn"])
    task = task_from_checkpoint(load_checkpoint(ckpt)).eval()
    weights = load_file(run_export(ckpt, "safetensors", tmp_path, folder="st"))
    assert weights.keys() == task.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in task.state_dict().items())
    program = torch.export.load(run_export(ckpt, "pt2", tmp_path, folder="pt2"))
    x = torch.randint(0, 256, (4, *task.spec.input_shape), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), task(x))


def test_an_elm_exports_with_a_free_batch_dimension(train_run, tmp_path):
    """The closed-form net's outputs for any batch size, from torch.export's program as from the checkpoint."""
    ckpt = checkpoint_of(train_run, FAMILIES["elm"])
    task = task_from_checkpoint(load_checkpoint(ckpt)).eval()
    program = torch.export.load(run_export(ckpt, "pt2", tmp_path, folder="pt2"))
    for batch in (1, 7):
        x = torch.randint(0, 256, (batch, *task.spec.input_shape), dtype=torch.uint8)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), task(x))


@pytest.mark.parametrize("fmt, cell", [("pt2", "lstm"), ("onnx", "lstm"), ("onnx", "gru"), ("onnx", "rnn")])
def test_a_recurrent_text_model_exports_with_torch_export_and_to_onnx(train_run, tmp_path, caplog, fmt, cell):
    """One direction runs over every position without reading a length on the host, so torch.export keeps the batch
    dimension free (packing by length could not be exported); ONNX gets the same graph (no stable sort in it). The
    exporters' own chatter (their passes, torch's warnings about its internals) stays out of the user's terminal."""
    ckpt = checkpoint_of(train_run, ["model=rnn", f"model.cell={cell}", "data=text_synth", "data.count=300"])
    task = task_from_checkpoint(load_checkpoint(ckpt)).eval()
    caplog.set_level(logging.INFO)
    caplog.clear()  # the training run's records
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = run_export(ckpt, fmt, tmp_path)
    assert not caught and [r.name for r in caplog.records] == ["zoo.export"] * (fmt == "onnx")  # its check, alone
    ids = torch.tensor([[5, 6, 7, 0, 0, 0], [0, 0, 0, 5, 6, 7], [3, 4, 5, 6, 7, 8], [0] * 6, [9, 0, 0, 0, 0, 0]])
    ids = torch.nn.functional.pad(ids, (0, task.spec.input_shape[0] - ids.shape[1]))  # the data's max_length
    with torch.no_grad():
        expected = task(ids)
    if fmt == "pt2":
        torch.testing.assert_close(torch.export.load(path).module()(ids), expected)
    else:
        import onnxruntime as ort

        (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": ids.numpy()})
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)
    torch.testing.assert_close(expected[0], expected[1])  # the same tokens, padded left or right


def test_a_text_models_export_carries_the_tokenizer_that_makes_its_ids(train_run, tmp_path):
    """model.json says how texts become ids and tokenizer.json (Hugging Face tokenizers' file) makes them: a server
    with the export folder alone feeds the model what predict.py feeds it."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from zoo.run import restore_datamodule

    ckpt = checkpoint_of(train_run, ["model=text_avgpool", "data=text_synth", "data.count=300"])
    path = run_export(ckpt, "onnx", tmp_path)
    text = json.loads((path.parent / "model.json").read_text())["text"]
    assert text["tokenizer"] == "tokenizer.json" and text["padding_side"] in ("left", "right")
    texts = ["the movie was great", "not good at all, really bad"]
    tokenizer = Tokenizer.from_file(str(path.parent / text["tokenizer"]))
    ids = np.array([e.ids for e in tokenizer.encode_batch(texts)], dtype=np.int64)
    assert ids.shape == (2, text["max_length"])
    np.testing.assert_array_equal(ids, restore_datamodule(load_checkpoint(ckpt)).encode(texts).numpy())
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": ids})
    assert len(logits) == 2 and np.isfinite(logits).all()  # two classes: one logit each (model.json's output)


def test_a_model_torch_export_cannot_trace_is_one_line_naming_the_way_out(train_run, tmp_path):
    """Both formats run torch.export first: what it cannot trace (a bidirectional RNN, packed by length) is one line
    with torch.export's own reason, without the ONNX exporter's wrapper and terminal colours, naming the weights
    alone as the way out."""
    ckpt = checkpoint_of(train_run, ["model=rnn", "model.bidirectional=true", "data=text_synth", "data.count=300"])
    reasons = {}
    for fmt in ("pt2", "onnx"):
        with pytest.raises(
            ZooError, match=rf"^format={fmt}: this model does not export \((.+)\); try format=safetensors$"
        ) as err:
            run_export(ckpt, fmt, tmp_path, folder=fmt)
        reasons[fmt] = str(err.value).split(" (", 1)[1]
    assert reasons["onnx"] == reasons["pt2"] and "\x1b" not in reasons["onnx"]
    assert not list(tmp_path.rglob("model.*"))  # nothing half-written


def test_an_operator_onnx_lacks_is_one_line_naming_it_and_pt2(train_run, tmp_path, monkeypatch):
    """A stable sort (an operator ONNX lacks) has no ONNX function: the message names the operator."""
    ckpt = checkpoint_of(train_run, ["model=rnn", "data=text_synth", "data.count=300"])
    monkeypatch.setattr(torch, "argsort", lambda x, dim: torch.sort(x, dim=dim, stable=True).indices)
    with pytest.raises(
        ZooError,
        match=r"^format=onnx: this model does not export \(No ONNX function found for .*aten\.sort.*stable.*\); "
        r"try format=pt2$",
    ):
        run_export(ckpt, "onnx", tmp_path)


def test_export_never_overwrites_and_names_bad_formats(train_run, tmp_path):
    ckpt = checkpoint_of(train_run, FAMILIES["mlp"])
    with pytest.raises(ZooError, match="format=tflite is not valid; choose one of onnx, safetensors, pt2"):
        run_export(ckpt, "tflite", tmp_path)
    run_export(ckpt, "safetensors", tmp_path, folder="once")
    with pytest.raises(ZooError, match="already holds a run|exists; nothing was overwritten"):
        run_export(ckpt, "safetensors", tmp_path, folder="once")


def predict_cfg(tmp_path: Path, ckpt: Path, source: Path, *extra: str):
    return compose_config([f"ckpt_path={ckpt}", f"input={source}", *extra], tmp_path / "logs", "predict")


def test_predict_a_csv_with_the_runs_scaling_without_the_training_files(train_run, tmp_path, capsys):
    from sklearn.datasets import load_iris

    ckpt = checkpoint_of(
        train_run, ["model=logistic", "data=iris", "optimizer.lr=0.05", "trainer.max_epochs=30"], False
    )
    iris = load_iris(as_frame=True)
    rows = iris.frame.iloc[[0, 60, 120]]  # one flower of each species, the target column left in
    source = tmp_path / "flowers.csv"
    rows.to_csv(source, index=False)
    capsys.readouterr()
    predicted = predict(predict_cfg(tmp_path, ckpt, source))
    assert [r["predicted"] for r in predicted] == ["setosa", "versicolor", "virginica"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("0: setosa (0.") and "[setosa 0." in printed[0]
    out = tmp_path / "pred.csv"
    predict(predict_cfg(tmp_path, ckpt, source, f"output={out}"))
    table = list(csv.DictReader(out.open()))
    assert [r["predicted"] for r in table] == ["setosa", "versicolor", "virginica"]
    assert {"probability", "p(setosa)", "p(versicolor)", "p(virginica)"} <= set(table[0])
    assert abs(sum(float(table[0][f"p({c})"]) for c in iris.target_names) - 1) < 1e-5
    with pytest.raises(ZooError, match="exists; nothing was overwritten"):
        predict(predict_cfg(tmp_path, ckpt, source, f"output={out}"))
    rows.drop(columns=["petal width (cm)"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ZooError, match=r"columns petal width \(cm\) missing"):
        predict(predict_cfg(tmp_path, ckpt, tmp_path / "short.csv"))


def test_predict_reads_a_table_as_the_run_did_and_refuses_other_inputs_in_one_line(train_run, tmp_path):
    """A table model reads its rows split by the run's data.sep, whatever the file's suffix, a byte-order mark
    dropped; an image or a folder given to it is one line naming what it takes."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    train = tmp_path / "iris.csv"
    iris.to_csv(train, sep=";", index=False)
    ckpt = checkpoint_of(train_run, ["model=logistic", "data=csv", f"data.path={train}", "data.target=target",
                                     "data.sep=';'", "optimizer.lr=0.05", "trainer.max_epochs=30"], False)  # fmt: skip
    source = tmp_path / "flowers.txt"
    source.write_text("\ufeff" + iris.iloc[[0, 60, 120]].to_csv(sep=";", index=False), encoding="utf-8")
    assert [r["predicted"] for r in predict(predict_cfg(tmp_path, ckpt, source))] == ["0", "1", "2"]
    picture = tmp_path / "digit.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    takes = "this model takes a CSV table with the columns it trained on"
    with pytest.raises(ZooError, match=rf"^input: cannot parse '{picture}' as CSV \(.*\); {takes}$"):
        predict(predict_cfg(tmp_path, ckpt, picture))
    with pytest.raises(ZooError, match=rf"^input: '{tmp_path}' is a folder; {takes}$"):
        predict(predict_cfg(tmp_path, ckpt, tmp_path))


def test_predict_reads_texts_as_the_run_did(train_run, tmp_path):
    """A text model reads the texts of a table like the one it trained on (its text column, its separator), or a
    text file's lines (a byte-order mark dropped); bytes that are not UTF-8 are named by line and column."""
    rows = [("a fine film, great and warm", "pos"), ("dull and bad", "neg")] * 30
    train = tmp_path / "reviews.csv"
    with train.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter="|").writerows([("stars", "review"), *[(label, text) for text, label in rows]])
    ckpt = checkpoint_of(train_run, ["model=text_avgpool", "data=text_csv", f"data.path={train}", "data.sep=|",
                                     "data.text_column=review", "data.label_column=stars"])  # fmt: skip
    predicted = predict(predict_cfg(tmp_path, ckpt, train))
    assert len(predicted) == 60 and [r["input"] for r in predicted[:2]] == [rows[0][0], rows[1][0]]
    lines = tmp_path / "new.txt"
    lines.write_text("\ufeffgreat\n\ndull\n", encoding="utf-8")
    assert [r["input"] for r in predict(predict_cfg(tmp_path, ckpt, lines))] == ["great", "dull"]
    lines.write_bytes("caf\u00e9 ok\n".encode("latin-1"))
    with pytest.raises(ZooError, match=rf"^{lines}:1:4: not UTF-8 text; save the file as UTF-8$"):
        predict(predict_cfg(tmp_path, ckpt, lines))


def test_predict_with_a_searchs_ensemble_averages_its_members_probabilities(train_run, tmp_path):
    from sklearn.datasets import load_iris

    from zoo.ensemble import write_ensemble

    run = ("model=mlp", "data=iris", "logger=none", "trainer.max_epochs=5")
    folders = [train_run(*run, f"seed={seed}", folder=f"trial{seed}")[1] for seed in (1, 2)]
    done = [{"job": i, "run_dir": str(f), "test/acc": 0.9} for i, f in enumerate(folders)]
    write_ensemble(tmp_path, done, 5)  # as a search writes it: ensemble.json in its folder
    source = tmp_path / "flowers.csv"
    load_iris(as_frame=True).frame.iloc[[0, 60, 120]].to_csv(source, index=False)
    together = predict(predict_cfg(tmp_path, tmp_path / "ensemble.json", source))
    alone = [predict(predict_cfg(tmp_path, RunFolder(f).tested_checkpoint(), source)) for f in folders]
    for i, row in enumerate(together):
        for key in ("p(setosa)", "p(versicolor)", "p(virginica)"):
            assert row[key] == pytest.approx((alone[0][i][key] + alone[1][i][key]) / 2, abs=1e-5)
    (tmp_path / "bad.json").write_text('{"jobs": [1]}')
    with pytest.raises(ZooError, match=r"^ckpt_path: '.*bad.json' is not an ensemble.json written by a zoo search"):
        predict(predict_cfg(tmp_path, tmp_path / "bad.json", source))


def test_predict_image_files_resized_to_the_training_input(train_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    ckpt = checkpoint_of(train_run, ["model=cnn", "data=digits", "trainer.max_epochs=15"], False)
    digits = load_digits()
    folder = tmp_path / "pics"
    folder.mkdir()
    picks = [int(np.flatnonzero(digits.target == d)[-1]) for d in range(10)]  # from the end: test-ish images
    for i in picks:  # 32x32 RGB files: converted to the training's 8x8 grey
        big = np.kron(np.rint(digits.images[i] * 255 / 16), np.ones((4, 4))).astype(np.uint8)
        Image.fromarray(big).convert("RGB").save(folder / f"digit{digits.target[i]}.png")
    predicted = predict(predict_cfg(tmp_path, ckpt, folder))
    right = sum(Path(r["input"]).stem[-1] == r["predicted"] for r in predicted)
    assert len(predicted) == 10 and right >= 8
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match="holds no images"):
        predict(predict_cfg(tmp_path, ckpt, tmp_path / "empty"))
    (folder / "digit0.png").write_bytes(b"not a png")  # the input's own file named, not a training setting
    with pytest.raises(ZooError, match=r"^input: cannot read image '.*digit0\.png' .*; delete or replace that file$"):
        predict(predict_cfg(tmp_path, ckpt, folder))


def encode(rows, preprocessing: dict) -> np.ndarray:
    """What model.json's ``preprocessing.how`` tells a serving program to do, written from that text alone."""
    numeric = preprocessing["numeric"]
    values = rows[numeric["names"]].to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    parts = [(np.where(missing, numeric["median"], values) - numeric["mean"]) / numeric["std"]]
    parts.append(missing[:, np.asarray(numeric["indicator"], dtype=bool)])
    for column, categories in preprocessing["categorical"].items():
        codes = rows[column].astype("string").fillna(preprocessing["missing_category"]).to_numpy()
        parts.append(codes[:, None] == np.asarray(categories)[None, :])
    return np.concatenate(parts, axis=1).astype(np.float32)


def test_an_exported_table_model_serves_raw_rows_with_the_encoding_in_model_json(train_run, tmp_path):
    import onnxruntime as ort
    import pandas as pd

    rows = pd.DataFrame({"age": [22.0, None, 35.0, 61.0], "fare": [7.25, 71.3, None, 8.05],
                         "port": ["S", "C", None, "S"]})  # fmt: skip
    table = pd.concat([rows] * 15, ignore_index=True).assign(survived=[0, 1, 1, 0] * 15)
    table.to_csv(tmp_path / "people.csv", index=False)
    ckpt = checkpoint_of(train_run, ["data=csv", f"data.path={tmp_path / 'people.csv'}", "data.target=survived"])
    path = run_export(ckpt, "onnx", tmp_path)
    info = json.loads((path.parent / "model.json").read_text())
    assert "median" in info["preprocessing"]["how"]
    assert info["preprocessing"]["categorical"]["port"] == ["<missing>", "C", "S"]  # a missing value: a category
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": encode(rows, info["preprocessing"])})
    rows.to_csv(tmp_path / "new.csv", index=False)
    predicted = predict(predict_cfg(tmp_path, ckpt, tmp_path / "new.csv"))
    assert info["output"].startswith("one logit per row")  # two classes: sigmoid(logit) = p(class_names[1])
    assert [info["class_names"][int(z > 0)] for z in logits[:, 0]] == [r["predicted"] for r in predicted]
    task = task_from_checkpoint(load_checkpoint(ckpt)).eval()
    with torch.no_grad():
        expected = task(torch.from_numpy(encode(rows, info["preprocessing"])))
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4, rtol=0)
