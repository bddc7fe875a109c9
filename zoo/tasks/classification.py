"""Classification: binary (one logit and BCE, the course's logistic regression) or multi-class (softmax + CE)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassF1Score

from zoo.data.spec import CLASSIFICATION
from zoo.errors import ZooError
from zoo.tasks.base import SupervisedTask


class ClassificationTask(SupervisedTask):
    """Logs ``loss``, ``acc`` and macro ``f1`` per split (and ``auroc`` for two classes); predicts probabilities."""

    kind = CLASSIFICATION
    losses = ("bce", "cross_entropy")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        k = self.spec.num_classes
        if self.loss_name == "bce" and k != 2:
            raise ZooError(f"model.loss=bce needs two classes but data={self.spec.name} has {k}; use cross_entropy")
        metrics = {"acc": MulticlassAccuracy(k, average="micro"), "f1": MulticlassF1Score(k, average="macro")}
        if k == 2:
            metrics["auroc"] = BinaryAUROC()
        self.metrics = nn.ModuleDict(
            {split: MetricCollection(metrics, prefix=f"{split}/").clone() for split in ("val", "test")}
        )

    def default_loss(self) -> str:
        return "bce" if self.spec.num_classes == 2 else "cross_entropy"

    def num_outputs(self) -> int:
        return 1 if self.loss_name == "bce" else self.spec.num_classes

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "bce":
            return self.loss_fn(out.squeeze(1), y.float())
        return self.loss_fn(out, y)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities, one column per class (two for a single-logit binary model)."""
        if self.loss_name == "bce":
            p = torch.sigmoid(out.squeeze(1))
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(out, dim=1)

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        hits = (out.squeeze(1) > 0).long() == y if self.loss_name == "bce" else out.argmax(1) == y
        return {"acc": hits.sum().float()}

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        probs = self.predict(out)
        collection = self.metrics[split]
        for name, metric in collection.items(keep_base=True):
            metric.update(probs[:, 1] if name.endswith("auroc") else probs, y)
        self.log_dict(collection, sync_dist=True)
