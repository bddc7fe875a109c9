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
# # 3. Convolutional nets and pretrained models
#
# *Introdução ao Deep Learning com R*: "Convolutional Neural Networks", "Imagens como dados", "Uma convolução",
# "Outros tipos de padding/strides", "Max Pool", "Dropout", "Batch normalization", "Modelos pré-treinados",
# "tfhub" (exemplos 06-08, exercícios 07-08). `ZOO_FAST=1` stops every training after two epochs.

# %%
import os

os.environ.setdefault("WANDB_SILENT", "true")

import pandas as pd
from torch import nn

import zoo
from zoo.nets.conv_arith import conv_output_size, pool_output_size

# %% [markdown]
# ## What a convolution does to the size (exemplo 06)
#
# An `i`-pixel side, a `k`-pixel kernel, stride `s` and padding `p` give `o = (i + 2p - k) / s + 1` pixels:

# %%
pd.DataFrame(
    [
        {"input": 28, "kernel": 5, "stride": 1, "padding": 0, "output": conv_output_size(28, 5, 1, 0)},
        {"input": 28, "kernel": 3, "stride": 1, "padding": "same", "output": conv_output_size(28, 3, 1, "same")},
        {"input": 28, "kernel": 3, "stride": 2, "padding": 1, "output": conv_output_size(28, 3, 2, 1)},
        {"input": 28, "kernel": 2, "stride": 2, "padding": "max pool", "output": pool_output_size(28, 2)},
    ]
)

# %% [markdown]
# ## A CNN on images (exemplo 07)
#
# Convolution, activation and max pooling blocks that shrink the image and deepen it, then dense layers:
# `model=cnn` on scikit-learn's 8x8 digits, with batch norm, dropout and a small shift augmentation.

# %%
cnn = zoo.fit(experiment="intro_exemplo07_conv_mnist")
cnn

# %% [markdown]
# The same kind of net written as Keras' sequential model: `layer_conv_2d`, `layer_max_pooling_2d`,
# `layer_flatten`, `layer_dense`. Lazy layers take their input sizes from the data (5,000 real MNIST digits).

# %%
net = zoo.Sequential()
net.add(nn.LazyConv2d(32, 3, padding="same"))
net.add(nn.ReLU())
net.add(nn.MaxPool2d(2))
net.add(nn.LazyConv2d(64, 3, padding="same"))
net.add(nn.ReLU())
net.add(nn.MaxPool2d(2))
net.add(nn.Flatten())
net.add(nn.LazyLinear(128))
net.add(nn.ReLU())
net.add(nn.LazyLinear(10))
keras_cnn = zoo.fit(net=net, data="mnist5k", trainer={"max_epochs": 5})
keras_cnn.metrics

# %% [markdown]
# ## Dropout and batch normalization (exercício 08)
#
# The same CNN with and without them; the validation loss shows what they change.

# %%
plain = zoo.fit(model="cnn", data="digits", trainer={"max_epochs": 30})
regularised = zoo.fit(experiment="intro_exercicio08_dropout_batchnorm")
ax = pd.DataFrame(
    {"plain: val": plain.history["val/loss"], "dropout + batch norm: val": regularised.history["val/loss"]}
).plot(ylabel="val/loss")

# %%
pd.DataFrame({"plain": plain.metrics, "dropout + batch norm": regularised.metrics}).T

# %% [markdown]
# ## Pretrained models (exemplo 08)
#
# tfhub's `layer_hub` becomes a timm backbone. First a backbone learns on MNIST digits and is saved as a hub
# would serve it (`<run>/pretrained`); then it is frozen, as a feature extractor, and only a new head learns
# another data set (the 8x8 digits, other writers and scanner) from one labelled image per class. The same net
# from scratch, on the same images, shows what the pretrained features bring.

# %%
pretrained = zoo.fit(experiment="transfer_pretrain")
frozen = zoo.fit(experiment="transfer_frozen", model={"weights": str(pretrained.folder / "pretrained")})
scratch = zoo.fit(experiment="transfer_frozen", model={"weights": None, "finetune": {"mode": "full"}})
pd.DataFrame({"frozen pretrained features": frozen.metrics, "from scratch": scratch.metrics}).T[["test/acc"]]
