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
# # 6. Model selection: three ways to write a net, overfitting, regularisation, validation, search and the ELM
#
# *Redes Neurais e Deep Learning*: "Como funciona o Keras API", "Type of errors" (underfitting and overfitting),
# "Early stopping", "Regularização", "Dropout", cross-validation, hyperparameter search, the Extreme Learning
# Machine and the exercises (Titanic, Mushroom, Spotify). `ZOO_FAST=1` stops every training after two epochs.

# %%
import os
import tempfile
from pathlib import Path

os.environ.setdefault("WANDB_SILENT", "true")

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

import zoo

# %% [markdown]
# ## The Keras API, three ways
#
# **Sequential**: a stack of layers, `model.add(...)` as in Keras. Lazy layers take their sizes from the data.

# %%
sequential = zoo.Sequential()
sequential.add(nn.Flatten())
sequential.add(nn.LazyLinear(20))
sequential.add(nn.ReLU())
sequential.add(nn.LazyLinear(20))
sequential.add(nn.ReLU())
sequential.add(nn.LazyLinear(10))
zoo.fit(net=sequential, data="digits").metrics

# %% [markdown]
# **Functional**: "a layer instance is callable on a tensor, and returns a tensor"; the model is the graph from
# the inputs to the outputs, so it can branch and join (here a skip connection).

# %%
inputs = zoo.Input(shape=(1, 8, 8))
x = nn.Flatten()(inputs)
x = nn.ReLU()(nn.LazyLinear(64)(x))
x = nn.ReLU()(nn.LazyLinear(64)(x)) + x
functional = zoo.Model(inputs=inputs, outputs=nn.LazyLinear(10)(x))
zoo.fit(net=functional, data="digits").metrics


# %% [markdown]
# **Subclassing**: the layers in `__init__`, the computation in `forward` (Keras' `call`).


# %%
class MyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense1 = nn.LazyLinear(20)
        self.dense2 = nn.LazyLinear(20)
        self.dense3 = nn.LazyLinear(10)

    def forward(self, x):
        x = torch.relu(self.dense1(x.flatten(1)))
        x = torch.relu(self.dense2(x))
        return self.dense3(x)


subclassed = zoo.fit(net=MyModel(), data="digits")
subclassed.metrics

# %% [markdown]
# A net that does not fit the data is refused before training, with one line naming the shapes:

# %%
try:
    zoo.fit(net=zoo.Sequential([nn.Flatten(), nn.LazyLinear(5)]), data="digits")
except zoo.ZooError as error:
    print(error)

# %% [markdown]
# ## Underfitting and overfitting
#
# The same MLP, narrow to wide, on few training images: the gap between training and validation loss grows with
# the capacity.

# %%
few = {"data": {"train_per_class": 20}, "trainer": {"max_epochs": 60}}
widths = {
    units: zoo.fit("model=mlp", "data=digits", model={"net": {"hidden": [units]}}, **few) for units in (2, 32, 512)
}
final = {units: r.history[["train/loss", "val/loss"]].iloc[-1] for units, r in widths.items()}
complexity = pd.DataFrame(final).T
ax = complexity.plot(marker="o", logx=True, xlabel="hidden units", ylabel="final loss")

# %% [markdown]
# ## Early stopping
#
# Stop when the validation loss has not improved for `patience` epochs and keep the best epoch's weights
# (`overfitting.png` marks both).

# %%
early = zoo.fit(experiment="early_stopping_digits")
early

# %% [markdown]
# ## Regularisation: L1, L2 and dropout
#
# L1 drives weights to zero (`test/sparsity`: the share of weights below 1e-3), L2 keeps them small, dropout
# switches units off at random while training.

# %%
penalties = {
    "none": {},
    "L1": {"model": {"l1": 3e-4}},
    "L2": {"model": {"l2": 3e-3}},
    "dropout": {"model": {"net": {"dropout": 0.5}}},
}
regularised = {
    name: zoo.fit("model=mlp", "data=digits", trainer={"max_epochs": 30}, **extra) for name, extra in penalties.items()
}
pd.DataFrame({name: r.metrics for name, r in regularised.items()}).T[["test/acc", "test/sparsity"]]

# %%
weights = {name: r.net.dense1.weight.detach().flatten().numpy() for name, r in regularised.items()}
ax = pd.DataFrame({name: pd.Series(w) for name, w in weights.items()}).plot.hist(bins=60, alpha=0.5, logy=True)

# %% [markdown]
# ## Cross-validation
#
# K folds of the training and validation data, each held out once; the test split stays aside. The metrics are
# each metric's mean over the folds, with `_std` beside it.

# %%
cv = zoo.fit(experiment="cv_digits")
pd.read_csv(cv.folder / "cv_folds.csv")

# %% [markdown]
# ## Hyperparameter search
#
# A grid by hand: every combination trained, ranked by the validation accuracy. From the command line,
# `python scripts/train.py -m hparams_search=optuna` searches with Optuna and writes `results.csv`.

# %%
grid = []
for lr in (1e-3, 1e-2):
    for units in (64, 256):
        settings = {"optimizer": {"lr": lr}, "model": {"net": {"hidden": [units]}}, "trainer": {"max_epochs": 20}}
        run = zoo.fit("model=mlp", "data=digits", optimized_metric="val/acc", **settings)
        grid.append({"lr": lr, "units": units, **run.metrics})
pd.DataFrame(grid).sort_values("val/acc", ascending=False)

# %% [markdown]
# ## The Extreme Learning Machine against the MLP and an SVM
#
# An ELM draws its hidden layer at random and solves the output weights in closed form, in one pass: no
# backpropagation. Here against the MLP and scikit-learn's RBF SVM on the same split.

# %%
elm = zoo.fit(experiment="elm_digits")
mlp = zoo.fit(model="mlp", data="digits")
splits = elm.datamodule.splits
scaler = StandardScaler().fit(splits["train"][0].flatten(1).float().numpy())
x_train, x_test = (scaler.transform(splits[s][0].flatten(1).float().numpy()) for s in ("train", "test"))
svm = SVC().fit(x_train, splits["train"][1].numpy())
svm_acc = float(np.mean(svm.predict(x_test) == splits["test"][1].numpy()))
pd.DataFrame({"test/acc": {"ELM": elm.metrics["test/acc"], "MLP": mlp.metrics["test/acc"], "RBF SVM": svm_acc}})

# %% [markdown]
# ## The exercises: your own CSV files
#
# The exercises read Kaggle's files, which you download yourself; their recipes take the path:
#
# ```python
# zoo.fit(experiment="redes_demo_titanic_elm", data={"path": "train.csv"})      # Titanic, an ELM
# zoo.fit(experiment="redes_exercicio04_mushroom_elm", data={"path": "mushrooms.csv"})  # exercício 4
# zoo.fit(experiment="redes_exercicio05_spotify_mlp", data={"path": "data.csv"})        # exercício 5
# ```
#
# Any CSV works the same way (`data=csv`: categorical columns one-hot encoded, numeric ones standardised, missing
# values filled). Here the Titanic recipe's ELM on a CSV written from scikit-learn's breast cancer data:

# %%
table = Path(tempfile.mkdtemp()) / "breast_cancer.csv"
load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
csv = {"path": str(table), "target": "target", "drop": []}
titanic_recipe = zoo.fit(experiment="redes_demo_titanic_elm", data=csv)
titanic_recipe.metrics
