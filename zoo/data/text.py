"""Text classification data: the sarcasm headlines (exercício 10), IMDB reviews, any CSV/JSONL, and a generated set
in which word order matters.

Each module reads its texts, splits them (the official test split where there is one), trains the tokenizer on the
training split only (``zoo.data.tokenize``) and holds the splits in memory as int64 ids ``[N, max_length]``. The
fitted tokenizer travels in checkpoints (``state_dict``) and is written to the run folder as ``tokenizer.json``;
``load_state_dict`` + ``encode`` turn new texts into ids exactly as in training, without the data files.
``text_encoding.txt`` beside it shows a few training texts as the model reads them: tokens, ids, padding, one-hot rows.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.files import separator_hint
from zoo.data.memory import InMemoryDataModule
from zoo.data.splits import split_indices
from zoo.data.tokenize import (
    UNK,
    check_padding_side,
    describe_encoding,
    encode,
    fit_tokenizer,
    full_length,
    load_tokenizer,
    pad_id_of,
    padding_side_of,
    pretrained_tokenizer,
)
from zoo.errors import ZooError
from zoo.spec import CLASSIFICATION, TEXT, TextSpec, spec_from_dict


@dataclass
class Texts:
    """Texts with their labels and where each came from (``file:line``), for error messages."""

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)

    def add(self, text: Any, label: Any, place: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ZooError(f"{place}: empty text; remove the row or give it some text")
        if label is None or str(label).strip() == "":
            raise ZooError(f"{place}: no label; every row needs one")
        self.texts.append(text)
        self.labels.append(str(label).strip())
        self.places.append(place)


class TextDataModule(InMemoryDataModule):
    """Base of the text data sets; subclasses implement ``load`` (all rows, and the official test rows if any)."""

    input_kind = TEXT
    class_order: list[str] | None = None  # labels in this order when the data set fixes one (neg, pos)

    def __init__(
        self,
        name: str,
        batch_size: int | str = 32,
        eval_batch_size: int = 1024,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        max_length: int = 32,
        tokenizer: dict[str, Any] | None = None,
        padding_side: str = "right",
    ) -> None:
        super().__init__(name, batch_size, eval_batch_size, test_fraction, val_fraction, split_seed)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ZooError(f"data.max_length={max_length!r} must be a positive integer (tokens kept per text)")
        self.max_length = max_length
        self.padding_side = check_padding_side(padding_side)
        self.tokenizer_cfg = dict(tokenizer or {"kind": "word"})
        self.tokenizer = None
        self.texts: dict[str, list[str]] = {}

    def load(self) -> tuple[Texts, Texts | None]:
        raise NotImplementedError

    def build(self) -> TextSpec:
        rows, official_test = self.load()
        names = self._class_names(rows.labels)
        index = {c: i for i, c in enumerate(names)}
        labels = np.array([index[label] for label in rows.labels])
        if official_test is None:
            fractions = (self.test_fraction, self.val_fraction)
            train, test, val = split_indices(labels, len(labels), fractions, self.split_seed, self.name)
            parts = {s: ([rows.texts[i] for i in idx], labels[idx]) for s, idx in (("train", train), ("val", val))}
            parts["test"] = ([rows.texts[i] for i in test], labels[test])
        else:
            train, val = split_indices(labels, len(labels), (self.val_fraction,), self.split_seed, self.name)
            parts = {s: ([rows.texts[i] for i in idx], labels[idx]) for s, idx in (("train", train), ("val", val))}
            for label, place in zip(official_test.labels, official_test.places, strict=True):
                if label not in index:
                    raise ZooError(
                        f"{place}: label {label!r} never appears in the training data ({', '.join(names)}); "
                        "fix the label or add training examples of it"
                    )
            parts["test"] = (official_test.texts, np.array([index[label] for label in official_test.labels]))
        self.texts = {split: texts for split, (texts, _) in parts.items()}
        self.tokenizer = self._fit_tokenizer(self.texts["train"])
        self.splits = {split: (self.encode(texts), torch.from_numpy(y).long()) for split, (texts, y) in parts.items()}
        return TextSpec(
            name=self.name,
            task=CLASSIFICATION,
            input_shape=[self.max_length],
            num_train=len(parts["train"][0]),
            class_names=names,
            vocab_size=self.tokenizer.get_vocab_size(),
            pad_id=pad_id_of(self.tokenizer),
        )

    def _class_names(self, labels: list[str]) -> list[str]:
        found = sorted(set(labels))
        if self.class_order is not None and set(found) <= set(self.class_order):
            found = list(self.class_order)
        if len(found) < 2:
            raise ZooError(f"data={self.name}: every text has label {found[0]!r}; classification needs two classes")
        return found

    def _fit_tokenizer(self, texts: list[str]):
        cfg = dict(self.tokenizer_cfg)
        if cfg.get("kind") == "pretrained":
            if not cfg.get("source"):
                raise ZooError("data.tokenizer.kind=pretrained needs data.tokenizer.source (a hub name or a folder)")
            return pretrained_tokenizer(str(cfg["source"]))
        return fit_tokenizer(texts, **cfg)

    # -- what prediction needs: the fitted tokenizer, without the data files ----------------------------------
    def encode(self, texts: list[str]) -> torch.Tensor:
        """int64 ids ``[len(texts), max_length]``, tokenized, truncated and padded as in training."""
        if self.tokenizer is None:
            raise ZooError(f"data={self.name}: no tokenizer yet; call setup() or load_state_dict() first")
        return encode(self.tokenizer, list(texts), self.max_length, self.padding_side)

    def decode(self, ids: torch.Tensor) -> str:
        """One row of ids back to text, padding left out (what the model saw: lower case, ``<unk>`` for unseen)."""
        pad = pad_id_of(self.tokenizer)
        return self.tokenizer.decode([int(i) for i in ids if int(i) != pad], skip_special_tokens=False)

    def vocabulary(self) -> list[str]:
        """Token of each id, in id order (the word tokenizer numbers words by training frequency)."""
        vocab = self.tokenizer.get_vocab()
        return [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]

    def frequent_tokens(self, n: int) -> list[int]:
        """The ids of the ``n`` most frequent tokens of the training split, special tokens left out."""
        counts = torch.bincount(self.splits["train"][0].flatten(), minlength=self.tokenizer.get_vocab_size())
        special = {pad_id_of(self.tokenizer), self.tokenizer.token_to_id(UNK)}
        order = [int(i) for i in torch.argsort(counts, descending=True, stable=True) if counts[i] > 0]
        return [i for i in order if i not in special][:n]

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints as plain types: the spec, the fitted tokenizer (its JSON), the maximum length and the
        padding side."""
        return {
            **super().state_dict(),
            "tokenizer": self.tokenizer.to_str(),
            "max_length": self.max_length,
            "padding_side": self.padding_side,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the tokenizer, length, padding side and spec of a checkpoint; splits already loaded are encoded again
        with them. A checkpoint from before ``data.padding_side`` padded as its tokenizer says (on the right)."""
        self.tokenizer = load_tokenizer(state["tokenizer"])
        self.max_length = int(state["max_length"])
        self.padding_side = state.get("padding_side") or padding_side_of(self.tokenizer) or "right"
        self._spec = spec_from_dict(state["spec"])
        if self.texts:
            self.splits = {s: (self.encode(self.texts[s]), y) for s, (_, y) in self.splits.items()}

    def text_encoding(self, count: int = 3) -> str:
        """The first ``count`` training texts as the model reads them (``text_encoding.txt``): raw, tokens, ids,
        padding, and the first one's one-hot rows. Encoded here with :meth:`encode`, the function that encoded the
        splits, so the ids are the run's own whatever later re-splitting (``cv.folds``) did to the splits."""
        texts = self.texts["train"][:count]
        lengths = [full_length(self.tokenizer, text) for text in texts]
        kind = self.tokenizer_cfg.get("kind", "word")
        of = f" of {self.tokenizer_cfg['source']}" if kind == "pretrained" else ""
        source = f"data={self.name} ({kind} tokenizer{of})"
        return describe_encoding(
            self.tokenizer,
            texts,
            self.encode(texts),
            lengths,
            self.tokenizer.get_vocab_size(),
            self.padding_side,
            source,
        )

    def run_files(self) -> dict[str, str]:
        """``tokenizer.json`` beside the run (load it with ``tokenizers.Tokenizer.from_file``; it pads as training
        did) and ``text_encoding.txt``, a few training texts as tokens, ids and one-hot rows."""
        files = {"text_encoding.txt": self.text_encoding()} if self.texts.get("train") else {}
        return {**files, "tokenizer.json": self.tokenizer.to_str(pretty=True)}


# -- reading files -----------------------------------------------------------------------------------------


def read_text(path: Path, what: str = "file") -> str:
    """A UTF-8 file's text; bad bytes are named by line and column."""
    if not path.is_file():
        raise ZooError(f"data.path: {what} '{path}' not found; give the path of an existing file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ZooError(f"{path}:{line}:{column}: not UTF-8 text; save the file as UTF-8") from None


def read_jsonl(path: Path, text_key: str, label_key: str, hint: str = "") -> Texts:
    """JSON lines, one object per line (blank lines skipped), or one JSON array of objects (the TensorFlow course's
    ``sarcasm.json``; its items are then numbered instead of lines)."""
    text, rows = read_text(path), Texts()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise ZooError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
        lines = [(f"item {i}", obj) for i, obj in enumerate(items, start=1)]
    else:
        lines = [(str(n), line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for number, line in lines:
        try:
            obj = json.loads(line) if isinstance(line, str) else line
        except json.JSONDecodeError as err:
            raise ZooError(f"{path}:{number}: not a JSON object ({err.msg}); one object per line expected") from None
        for key in (text_key, label_key):
            if not isinstance(obj, dict) or key not in obj:
                have = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
                raise ZooError(f"{path}:{number}: no '{key}' field (has {have}){hint}")
        rows.add(obj[text_key], obj[label_key], f"{path}:{number}")
    return rows


def read_csv(path: Path, text_key: str, label_key: str, sep: str = ",") -> Texts:
    rows = Texts()
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=sep)
    columns = reader.fieldnames or []
    for key in (text_key, label_key):
        if key not in columns:
            have = ", ".join(columns)
            hint = separator_hint(columns, sep)
            raise ZooError(f"{path}:1: no column '{key}' (columns: {have}); set data.text_column/label_column{hint}")
    for row in reader:
        rows.add(row[text_key], row[label_key], f"{path}:{reader.line_num}")
    return rows


def read_table(path: Path, text_key: str, label_key: str, sep: str = ",") -> Texts:
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path, text_key, label_key, "; set data.text_column/label_column")
    return read_csv(path, text_key, label_key, "\t" if path.suffix.lower() == ".tsv" else sep)


# -- the data sets -----------------------------------------------------------------------------------------


class SarcasmDataModule(TextDataModule):
    """News Headlines Dataset for Sarcasm Detection (Misra, 2018): JSON lines with ``headline``, ``is_sarcastic``
    (0/1) and ``article_link``; the course's exercício 10."""

    class_order = ["not_sarcastic", "sarcastic"]

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)

    def load(self) -> tuple[Texts, None]:
        rows = read_jsonl(self.path, "headline", "is_sarcastic")
        for i, (label, place) in enumerate(zip(rows.labels, rows.places, strict=True)):
            if label not in ("0", "1", "True", "False"):
                raise ZooError(f"{place}: is_sarcastic={label!r}; expected 0 or 1")
            rows.labels[i] = self.class_order[label in ("1", "True")]
        return rows, None


class ImdbDataModule(TextDataModule):
    """Large Movie Review Dataset (Maas et al., 2011) as ``aclImdb/``: ``train/pos``, ``train/neg``, ``test/pos``,
    ``test/neg``, one review per ``.txt`` file; the official 25,000/25,000 split is kept."""

    class_order = ["neg", "pos"]

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)

    def _read(self, split: str) -> Texts:
        rows = Texts()
        for label in self.class_order:
            folder = self.path / split / label
            if not folder.is_dir():
                raise ZooError(
                    f"data.path: '{folder}' not found; give the aclImdb folder (train/pos, train/neg, test/...)"
                )
            for file in sorted(folder.glob("*.txt")):
                rows.add(read_text(file).replace("<br />", " "), label, f"{file}:1")
        return rows

    def load(self) -> tuple[Texts, Texts]:
        return self._read("train"), self._read("test")


class TextCsvDataModule(TextDataModule):
    """Any CSV/TSV or JSON-lines file with a text column and a label column; ``test_path`` keeps a test file apart."""

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        test_path: str | None = None,
        sep: str = ",",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.test_path = Path(path), Path(test_path) if test_path else None
        self.columns, self.sep = (text_column, label_column), sep

    def load(self) -> tuple[Texts, Texts | None]:
        rows = read_table(self.path, *self.columns, self.sep)
        test = read_table(self.test_path, *self.columns, self.sep) if self.test_path else None
        return rows, test


# -- generated: word order matters -------------------------------------------------------------------------

POSITIVE = ["good", "great", "excellent", "nice", "wonderful", "fine", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "boring", "dull", "horrible", "weak"]
NOUNS = ["movie", "film", "food", "service", "book", "hotel", "plot", "music", "show", "game"]
OPENERS = ["", "honestly", "i think", "overall", "well", "to be fair", "in my opinion"]


def synth_review(rng: random.Random) -> tuple[str, str]:
    """One review and its label. Half are one clause ("the film was not good"); half are two joined by "but",
    where the second clause decides ("not good but great" is positive, "good but not great" negative). The words
    are the same in both orders, so a bag of words (average pooling) cannot tell them apart; a recurrent net can."""

    def clause() -> tuple[str, int]:
        positive = rng.random() < 0.5
        word = rng.choice(POSITIVE if positive else NEGATIVE)
        negated = rng.random() < 0.5
        return ("not " if negated else "") + word, int(positive != negated)

    first, polarity = clause()
    text = f"{rng.choice(OPENERS)} the {rng.choice(NOUNS)} was {first}"
    if rng.random() < 0.5:
        second, polarity = clause()
        text += f" but {second}"
    return text.strip(), ["negative", "positive"][polarity]


class TextSynthDataModule(TextDataModule):
    """Generated reviews (``count``, ``seed``): negation and "but" make word order matter; see :func:`synth_review`."""

    class_order = ["negative", "positive"]

    def __init__(self, count: int = 4000, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(count, bool) or not isinstance(count, int) or count < 20:
            raise ZooError(f"data.count={count!r} must be an integer >= 20")
        self.count, self.seed = count, seed

    def load(self) -> tuple[Texts, None]:
        rng = random.Random(self.seed)
        rows = Texts()
        for i in range(self.count):
            rows.add(*synth_review(rng), f"text_synth:{i}")
        return rows, None
