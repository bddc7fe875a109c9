"""Regression: the net learns standardised targets; metrics are reported in the target's own units."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from zoo.spec import REGRESSION
from zoo.tasks.base import SupervisedTask


class RegressionTask(SupervisedTask):
    """Logs ``loss`` (on the scaled target), ``rmse``, ``mae`` and ``r2`` (in original units) per split."""

    kind = REGRESSION
    losses = ("mse", "mae", "huber")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("target_mean", torch.tensor(self.spec.target_mean or [0.0]))
        self.register_buffer("target_std", torch.tensor(self.spec.target_std or [1.0]))
        metrics = {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()}
        self.metrics = nn.ModuleDict(
            {split: MetricCollection(metrics, prefix=f"{split}/").clone() for split in ("val", "test")}
        )

    def default_loss(self) -> str:
        return "mse"

    def num_outputs(self) -> int:
        return self.spec.num_targets

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out, (y - self.target_mean) / self.target_std)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out * self.target_std + self.target_mean

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        collection = self.metrics[split]
        pred = self.predict(out)
        collection.update(pred.squeeze(1), y.squeeze(1))
        self.log_dict(collection, sync_dist=True)
