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
# # 4. LeNet-5, ResNets and other topics
#
# *Introdução ao Deep Learning com R*: "LeNet5", "ResNets" and "Outros tópicos": segmentation (U-Net), object
# detection and embeddings learnt with a triplet loss. `ZOO_FAST=1` stops every training after two epochs.

# %%
import os

os.environ.setdefault("WANDB_SILENT", "true")

import zoo

# %% [markdown]
# ## LeNet-5 (LeCun et al., 1998)
#
# C1-S2-C3-S4-C5-F6 on 32x32 images: MNIST's 28x28 digits are padded with black borders, as in the paper;
# `model.variant=classic` keeps tanh, average pooling and C3's sparse connection table.

# %%
lenet = zoo.fit(experiment="lenet5_mnist5k")
lenet

# %%
lenet.net

# %% [markdown]
# ## A ResNet (He et al., 2015)
#
# Residual blocks: each learns a correction added to its input, so deep nets still train. ResNet-20 on the digits:

# %%
resnet = zoo.fit(model="resnet", data="digits", trainer={"max_epochs": 15})
resnet.metrics

# %% [markdown]
# ## Segmentation: U-Net
#
# An encoder-decoder with skip connections gives every pixel a class; here generated shapes on a background.
# The figure shows the true and predicted masks.

# %%
unet = zoo.fit(experiment="unet_shapes")
unet

# %% [markdown]
# ## Object detection
#
# A one-stage detector in the YOLO spirit: a grid of cells, each predicting an object's presence, box and class.

# %%
detector = zoo.fit(experiment="detector_boxes")
detector

# %% [markdown]
# ## Embeddings with a triplet loss (face-recognition style)
#
# A net maps each image to a point where images of a class lie closer together than to any other class, by a
# margin; judged by nearest-neighbour accuracy and same/different verification.

# %%
triplet = zoo.fit(experiment="triplet_digits")
triplet
