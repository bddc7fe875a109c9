"""Texts -> padded int64 token ids with Hugging Face ``tokenizers`` (torchtext is gone: its last release, 0.18,
cannot load with torch >= 2.4).

``word`` splits like the slides (lower case, words and punctuation apart, one id per word); ``bpe`` and
``wordpiece`` learn sub-words, so an unseen word still gets pieces instead of ``<unk>``. All three are trained on
the training split only; ``pretrained`` loads a pretrained model's own tokenizer (a hub name or a local folder).
Id 0 is ``<pad>`` and 1 is ``<unk>`` for the trained kinds.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.errors import ZooError

PAD, UNK = "<pad>", "<unk>"
KINDS = ("word", "bpe", "wordpiece", "pretrained")


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
        hf = AutoTokenizer.from_pretrained(source)
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


def pad_id_of(tok) -> int:
    """The padding id: the pretrained tokenizer's own, else ``<pad>`` (0)."""
    padding = tok.padding
    return int(padding["pad_id"]) if padding else int(tok.token_to_id(PAD) or 0)


def encode(tok, texts: list[str], max_length: int) -> torch.Tensor:
    """int64 ids ``[len(texts), max_length]``: truncated to ``max_length`` and padded (at the end) with the pad id."""
    pad = pad_id_of(tok)
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=pad, pad_token=tok.id_to_token(pad) or PAD, length=max_length)
    ids = [e.ids for e in tok.encode_batch(texts)]
    return torch.tensor(ids, dtype=torch.long).reshape(len(texts), max_length)
