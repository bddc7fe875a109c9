"""Texts -> padded int64 token ids with Hugging Face ``tokenizers`` (torchtext is gone: its last release, 0.18,
cannot load with torch >= 2.4).

``word`` splits like the slides (lower case, words and punctuation apart, one id per word); ``bpe`` and
``wordpiece`` learn sub-words, so an unseen word still gets pieces instead of ``<unk>``. All three are trained on
the training split only; ``pretrained`` loads a pretrained model's own tokenizer (a hub name or a local folder).
Id 0 is ``<pad>`` and 1 is ``<unk>`` for the trained kinds. Padding goes after the tokens (``right``, zoo's default)
or before them (``left``, as the slides and Keras' ``pad_sequences`` do); zoo's text nets read either the same way.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import torch

from zoo.config import installed_copy
from zoo.errors import ZooError

PAD, UNK = "<pad>", "<unk>"
KINDS = ("word", "bpe", "wordpiece", "pretrained")
SIDES = ("right", "left")


def check_padding_side(side: Any) -> str:
    """``side`` if it is one of :data:`SIDES`; else the one-line error naming the key and the choices."""
    if side not in SIDES:
        raise ZooError(f"data.padding_side={side!r} is not valid; choose one of {', '.join(SIDES)}")
    return side


def fit_tokenizer(texts: list[str], kind: str = "word", vocab_size: int = 10000, min_frequency: int = 1, **_: Any):
    """A tokenizer of ``kind`` trained on ``texts`` (the training split), with at most ``vocab_size`` ids."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if kind not in KINDS:
        raise ZooError(f"data.tokenizer.kind={kind!r} is not valid; choose one of {', '.join(KINDS)}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise ZooError(f"data.tokenizer.vocab_size={vocab_size!r} must be an integer >= 3 (<pad>, <unk> and a word)")
    specials = {"vocab_size": vocab_size, "min_frequency": min_frequency, "special_tokens": [PAD, UNK]}
    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(**specials, show_progress=False)
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK, end_of_word_suffix="</w>"))
        trainer = trainers.BpeTrainer(**specials, end_of_word_suffix="</w>", show_progress=False)
        tok.decoder = decoders.BPEDecoder(suffix="</w>")
    else:
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(**specials, show_progress=False)
        tok.decoder = decoders.WordPiece()
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and runs of punctuation, as Keras' tokenizer splits
    tok.train_from_iterator(texts, trainer)
    return tok


def pretrained_tokenizer(source: str):
    """A pretrained model's own tokenizer (hub name or local folder), as a ``tokenizers.Tokenizer``."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ZooError("a pretrained tokenizer needs transformers: pip install 'zoo[text]'") from None
    try:
        hf = AutoTokenizer.from_pretrained(installed_copy(source))
    except (OSError, ValueError) as err:
        raise ZooError(
            f"tokenizer {source!r} (model.backbone): not found ({str(err).splitlines()[0]}); give a hub name "
            "(online or cached) or a local folder with tokenizer.json"
        ) from None
    if not hf.is_fast or hf.pad_token_id is None:
        raise ZooError(f"tokenizer {source!r} (model.backbone): no fast version or no padding token")
    tok = hf.backend_tokenizer
    tok.enable_padding(pad_id=hf.pad_token_id, pad_token=hf.pad_token)
    return tok


def load_tokenizer(json_text: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json_text)


def padding_side_of(tok) -> str | None:
    """The side a tokenizer pads on (``left`` or ``right``), or None if it does not pad (a tokenizer from before
    ``data.padding_side``: it padded on the right)."""
    padding = tok.padding
    return str(padding["direction"]).lower() if padding else None


def pad_id_of(tok) -> int:
    """The padding id: the pretrained tokenizer's own, else ``<pad>`` (0)."""
    padding = tok.padding
    return int(padding["pad_id"]) if padding else int(tok.token_to_id(PAD) or 0)


def encode(tok, texts: list[str], max_length: int, padding_side: str = "right") -> torch.Tensor:
    """int64 ids ``[len(texts), max_length]``: truncated to ``max_length`` (the end of a long text is cut, whatever
    the padding side) and padded with the pad id after the tokens (``right``) or before them (``left``). The side
    stays set on the tokenizer, so its ``tokenizer.json`` pads as training did."""
    pad = pad_id_of(tok)
    tok.enable_truncation(max_length)
    tok.enable_padding(
        direction=check_padding_side(padding_side), pad_id=pad, pad_token=tok.id_to_token(pad) or PAD, length=max_length
    )
    ids = [e.ids for e in tok.encode_batch(texts)]
    return torch.tensor(ids, dtype=torch.long).reshape(len(texts), max_length)


# -- what the run folder shows: texts as the model reads them ---------------------------------------------------

SHOWN_POSITIONS = 20  # rows of the one-hot table at most (a run of padding is one row)
SHOWN_CHARACTERS = 300  # of each raw text
WIDTH = 116  # characters per line


def full_length(tok, text: str) -> int:
    """How many tokens ``text`` has before truncation (the tokenizer's padding and truncation are put back)."""
    padding, truncation = tok.padding, tok.truncation
    tok.no_padding()
    tok.no_truncation()
    try:
        return len(tok.encode(text).ids)
    finally:
        if padding:
            tok.enable_padding(**padding)
        if truncation:
            tok.enable_truncation(**truncation)


def _runs(ids: list[int], pad: int) -> list[tuple[int, int, int]]:
    """``(first position, last position, id)`` from 1: each real token alone, each run of padding as one."""
    runs: list[tuple[int, int, int]] = []
    for position, i in enumerate(ids, start=1):
        if i == pad and runs and runs[-1][2] == pad and runs[-1][1] == position - 1:
            runs[-1] = (runs[-1][0], position, pad)
        else:
            runs.append((position, position, i))
    return runs


def _columns(rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """Rows of cells aligned in columns (the first cell of each row is its label), wrapped into blocks of ``width``
    characters so that a long text stays readable."""
    label = max(len(row[0]) for row in rows)
    widths = [max(len(row[c]) for row in rows) for c in range(1, len(rows[0]))]
    lines, start = [], 0
    while start < len(widths):
        end, used = start, label
        while end < len(widths) and (end == start or used + 2 + widths[end] <= width):
            used += 2 + widths[end]
            end += 1
        for row in rows:
            cells = [row[0].ljust(label)] + [row[c + 1].ljust(widths[c]) for c in range(start, end)]
            lines.append("  " + "  ".join(cells).rstrip())
        lines.append("")
        start = end
    return lines


def describe_encoding(
    tok, texts: list[str], ids: torch.Tensor, lengths: list[int], vocab_size: int, padding_side: str, source: str
) -> str:
    """``text_encoding.txt``: each text raw, then its tokens and ids position by position (a run of padding shown
    once, ``<pad> x7``), then the first text's one-hot rows: what ``model.net.one_hot=true`` multiplies by the
    embedding matrix and what an embedding lookup reads without building them. ``ids`` are the rows the model
    reads, ``lengths`` each text's token count before truncation, ``source`` what the header says of the data."""
    pad = pad_id_of(tok)
    pad_token = tok.id_to_token(pad) or PAD
    max_length = ids.shape[1]
    where = "before the tokens" if padding_side == "left" else "after the tokens"
    lines = [
        *textwrap.wrap(
            f"How {source} becomes numbers: the first {len(texts)} training texts as the tokenizer (tokenizer.json) "
            f"reads them. Each is cut to max_length={max_length} tokens (the end of a longer text is dropped) or "
            f"padded to it with {pad_token} (id {pad}) on the {padding_side}, {where} "
            f"(data.padding_side={padding_side}). The nets leave padding out: averages do not count it, recurrent "
            "nets stop at the last real token, attention skips it.",
            WIDTH,
            break_on_hyphens=False,
            break_long_words=False,
        ),
        "",
    ]
    for n, (text, row, length) in enumerate(zip(texts, ids.tolist(), lengths, strict=True), start=1):
        shown = text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + " [...]"
        cut = f", cut to {max_length}" if length > max_length else ""
        lines += [f"text {n}: {json_quote(shown)}", f"  {length} tokens{cut}, {row.count(pad)} padding", ""]
        cells = [["position"], ["token"], ["id"]]
        for first, last, i in _runs(row, pad):
            times = f" x{last - first + 1}" if last > first else ""
            cells[0].append(f"{first}-{last}" if last > first else str(first))
            cells[1].append(f"{tok.id_to_token(i)}{times}")
            cells[2].append(f"{i}{times}")
        lines += _columns(cells)
    first = ids[0].tolist()
    runs = _runs(first, pad)
    shown_runs = runs[:SHOWN_POSITIONS]
    used = sorted({i for _, _, i in shown_runs})
    lines += textwrap.wrap(
        f"One-hot rows of text 1: one row per position, one column per id (vocab_size={vocab_size} columns), all 0 "
        "but a 1 in the column of the position's id. model=text_avgpool model.net.one_hot=true multiplies exactly "
        "these rows by the embedding matrix; an embedding (nn.Embedding) reads the same rows of that matrix by id, "
        f"without building them. Shown are the {len(used)} columns of the ids that occur below (the other "
        f"{vocab_size - len(used)} are 0 in every row), and a run of padding as one line (its rows are all the same).",
        WIDTH,
        break_on_hyphens=False,
        break_long_words=False,
    )
    if len(runs) > len(shown_runs):
        lines.append(f"Shown: positions 1-{shown_runs[-1][1]} of {max_length}.")
    lines.append("")
    table = [["position", "token", *map(str, used)]]
    for start, last, i in shown_runs:
        label = f"{start}-{last}" if last > start else str(start)
        table.append([label, tok.id_to_token(i) or "?", *("1" if c == i else "0" for c in used)])
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines += [
        "  "
        + "  ".join(
            cell.rjust(w) if c > 1 else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
    return "\n".join(lines).rstrip() + "\n"


def json_quote(text: str) -> str:
    """A text between double quotes, with its line breaks and quotes escaped, so that it stays on one line."""
    return json.dumps(text, ensure_ascii=False)
