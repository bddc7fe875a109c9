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
# # 1. Linear regression and gradient descent
#
# *Introdução ao Deep Learning com R*: "Regressão Linear", "Função de perda", "Gradient Descent", "SGD",
# "Mini-batch SGD" and "Keras" (exemplos 01-03, exercícios 01-03).
#
# Each `zoo.fit` below is the run `python scripts/train.py ...` makes with the same settings: the same configs,
# a new run folder under `logs/` (config, checkpoints, `history.csv`, figures) and a W&B run. Its keyword
# arguments are the command line's overrides: `data={"batch_size": 1}` is `data.batch_size=1`, and
# `experiment="intro_exemplo01_linear_regression"` picks a recipe from `conf/experiment/`.
# With `ZOO_FAST=1` in the environment every training stops after two epochs (how this notebook is tested).

# %%
import os

os.environ.setdefault("WANDB_SILENT", "true")  # W&B keeps each run in wandb/ (offline) without printing here

import pandas as pd
from torch import nn

import zoo

# %% [markdown]
# A mistake in a setting is one line that names it and the fix, and nothing runs:

# %% tags=["raises-exception"]
zoo.fit(experiment="intro_exemplo01_linear_regression", optimizer={"lr": "fast"})

# %% [markdown]
# ## ŷ = w·x + b, fitted by gradient descent (exemplo 01)
#
# The course's first example predicts a house's price (thousands) from its area in m². `data=house_prices`
# generates it, price = 3·area + 20 plus noise. `model=linear` is one dense layer ("Densa" or "Linear"), the loss
# is the mean squared error, and the recipe sets `data.batch_size=full`: every step follows the gradient of the
# loss over the whole training set, as the slides draw it.

# %%
run = zoo.fit(experiment="intro_exemplo01_linear_regression")
run

# %% [markdown]
# ## What was learnt: w and b
#
# The net works on standardised numbers (each feature and the target minus its training mean, over its standard
# deviation). Undoing that gives the line in the data's own units.

# %%
dense = run.net.dense
w_std, b_std = dense.weight.item(), dense.bias.item()
area = run.datamodule.preprocessor.state["numeric"]
mean_x, std_x = area["mean"][0], area["std"][0]
mean_y, std_y = run.task.spec.target_mean[0], run.task.spec.target_std[0]
w = std_y * w_std / std_x
b = std_y * (b_std - w_std * mean_x / std_x) + mean_y
print(f"price ≈ {w:.2f} · area + {b:.1f}   (the data was made with 3 · area + 20, plus noise)")

# %% [markdown]
# The loss falls epoch after epoch ("Encontrando o mínimo da função de perda"):

# %%
ax = run.history[["train/loss", "val/loss"]].plot(logy=True, ylabel="mean squared error (standardised)")

# %% [markdown]
# ## SGD, mini-batch and full batch (exemplo 02)
#
# The batch size chooses the variant: one house per step (stochastic gradient descent), a few (mini-batch), or
# all of them (gradient descent). Same model, same learning rate, same epochs:

# %%
sizes = {"SGD (1)": 1, "mini-batch (16)": 16, "full batch": "full"}
runs = {name: zoo.fit(experiment="intro_exemplo02_sgd", data={"batch_size": size}) for name, size in sizes.items()}
ax = pd.DataFrame({name: r.history["train/loss"] for name, r in runs.items()}).plot(logy=True, ylabel="train/loss")

# %%
pd.DataFrame({name: r.metrics for name, r in runs.items()}).T[["test/rmse", "test/r2"]]

# %% [markdown]
# SGD takes many small, noisy steps per epoch; full batch takes one smooth step. Per epoch SGD gets furthest;
# per step, full batch does.
#
# ## The same model written as Keras writes it (exemplo 03)
#
# Keras' `keras_model_sequential() %>% layer_dense(units = 1)`: a sequential model of one dense layer whose input
# size comes from the data. `nn.LazyLinear(1)` is that layer; `zoo.fit(net=...)` trains it with the same task,
# metrics and outputs as `model=linear`.

# %%
net = zoo.Sequential([nn.LazyLinear(1)])
keras_way = zoo.fit(net=net, data="house_prices", optimizer={"lr": 0.1}, trainer={"max_epochs": 50})
keras_way

# %% [markdown]
# ## Exercises 01-03
#
# The exercises' recipes are in `conf/experiment/`: `intro_exercicio01_linear_regression` (gradient descent by hand),
# `intro_exercicio02_minibatch_sgd`, `intro_exercicio03_keras_linear_regression` (the Boston housing data, 13 features):

# %%
boston = zoo.fit(experiment="intro_exercicio03_keras_linear_regression")
boston.metrics
