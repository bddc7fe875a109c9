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
# # 2. The multi-layer perceptron and logistic regression
#
# *Introdução ao Deep Learning com R*: "Multi-layer perceptron (MLP)", "Hidden units", "ReLU", "Sigmoid",
# "Regressão logística", "Mais de duas categorias" (exemplos 04-05, exercícios 04-05).
# `ZOO_FAST=1` stops every training after two epochs.

# %%
import os

os.environ.setdefault("WANDB_SILENT", "true")

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris
from torch import nn

import zoo

# %% [markdown]
# ## An MLP (exemplo 04)
#
# Dense layers with an activation between them: `model=mlp`, here on the wine data (13 measurements, 3 cultivars).

# %%
mlp = zoo.fit(experiment="intro_exemplo04_mlp")
mlp

# %% [markdown]
# Its layers (`model.net.hidden` sets the widths, `model.net.activation` the activation):

# %%
mlp.net

# %% [markdown]
# ## ReLU or sigmoid
#
# The same MLP with each activation: ReLU keeps gradients alive where sigmoid saturates.

# %%
activations = {
    act: zoo.fit(experiment="intro_exemplo04_mlp", model={"net": {"activation": act}}) for act in ("relu", "sigmoid")
}
ax = pd.DataFrame({act: r.history["val/loss"] for act, r in activations.items()}).plot(ylabel="val/loss")

# %% [markdown]
# ## The same MLP written as Keras' sequential model
#
# `keras_model_sequential() %>% layer_dense(32, activation = "relu") %>% layer_dense(3)`: lazy layers take their
# input size from the data, as Keras infers it. The last layer gives one score per class.

# %%
net = zoo.Sequential([nn.LazyLinear(32), nn.ReLU(), nn.LazyLinear(3)])
zoo.fit(net=net, data="wine", trainer={"max_epochs": 50})

# %% [markdown]
# ## Logistic regression (exemplo 05)
#
# For two classes ŷ must be a probability: one dense layer, a sigmoid, and the binary cross-entropy loss
# (`model=logistic` on the breast cancer data: malignant or benign).

# %%
logistic = zoo.fit(experiment="intro_exemplo05_logistic_regression")
logistic

# %% [markdown]
# Predictions are probabilities, with the same preprocessing as in training:

# %%
cancer = load_breast_cancer(as_frame=True)
logistic.predict(cancer.frame.drop(columns="target").head(5))

# %% [markdown]
# ## More than two categories: softmax
#
# With K classes the model returns K scores; softmax turns them into probabilities that sum to 1 and the loss is
# the categorical cross-entropy. The same `model=logistic` does it on iris (3 species):

# %%
softmax = zoo.fit(model="logistic", data="iris", trainer={"max_epochs": 100})
softmax.predict(load_iris(as_frame=True).frame.drop(columns="target").iloc[[0, 60, 120]])

# %% [markdown]
# ## Exercise 05: Boston housing, above or below the median price

# %%
zoo.fit(experiment="intro_exercicio05_boston_logistic").metrics
