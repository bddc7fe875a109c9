"""Classification: binary (one logit and BCE, the course's logistic regression) or multi-class (softmax + CE)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from zoo.errors import ZooError
from zoo.nets.inspect import has_convolutions, look_inside
from zoo.plots import plot_confusion_matrix, plot_predictions, plot_word_embeddings
from zoo.plots.conv import plot_convolution, plot_feature_maps, plot_filters
from zoo.protocols import DecodesText, WordEmbeddings
from zoo.report import Figure, Table
from zoo.spec import CLASSIFICATION
from zoo.tasks.base import SupervisedTask

EXAMPLES, MISTAKES = 24, 16  # test images shown with their predictions: a few of each class, then mistakes
TEXT_MISTAKES, WORDS = 500, 80  # text: misclassified test texts tabled; frequent words drawn
INSIDE_IMAGES = 3  # convolutional nets: test images (of different classes) whose feature maps are drawn
MISCLASSIFIED_COLUMNS = ["text", "true", "predicted", "confidence"]


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
        self.confusion = MulticlassConfusionMatrix(k)
        self._examples: list[tuple[torch.Tensor, ...]] = []  # (images, labels, predictions) kept for the figure
        self._mistakes: list[tuple[torch.Tensor, ...]] = []

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

    def predicted_class(self, out: torch.Tensor) -> torch.Tensor:
        """The class each output picks, straight from the logits (no softmax needed for an argmax)."""
        return (out.squeeze(1) > 0).long() if self.loss_name == "bce" else out.argmax(1)

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"acc": (self.predicted_class(out) == y).sum().float()}

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        probs = self.predict(out)
        collection = self.metrics[split]
        for name, metric in collection.items(keep_base=True):
            metric.update(probs[:, 1] if name.endswith("auroc") else probs, y)
        self.log_dict(collection, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self.confusion.reset()
        self._examples, self._mistakes = [], []

    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        pred = self.predicted_class(out)
        self.confusion.update(pred, y)
        if self.spec.is_image:
            self._keep_samples(x, y, pred)
        elif self.spec.is_text and sum(len(m[0]) for m in self._mistakes) < TEXT_MISTAKES:
            wrong = (pred != y).nonzero().flatten()
            confidence = self.predict(out).max(1).values
            self._mistakes.append((x[wrong].cpu(), y[wrong].cpu(), pred[wrong].cpu(), confidence[wrong].cpu()))

    def _keep_samples(self, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> None:
        """The first test images of each class (EXAMPLES in all) and the first MISTAKES misclassified ones."""
        k = self.spec.num_classes
        per_class = max(1, EXAMPLES // k)
        seen = sum((torch.bincount(e[1], minlength=k) for e in self._examples), torch.zeros(k, dtype=torch.long))
        if seen.min() >= per_class and sum(len(m[0]) for m in self._mistakes) >= MISTAKES:
            return  # the figure is full: later test batches cost nothing here
        seen = seen.to(y.device)
        rank = torch.zeros_like(y)  # position of each image among this batch's images of its class
        for c in y.unique():
            members = y == c
            rank[members] = torch.arange(int(members.sum()), device=y.device)
        take = (seen[y] + rank < per_class).nonzero().flatten()
        if len(take):
            self._examples.append((x[take].cpu(), y[take].cpu(), pred[take].cpu()))
        wrong = (pred != y).nonzero().flatten()[: MISTAKES - sum(len(m[0]) for m in self._mistakes)]
        if len(wrong):
            self._mistakes.append((x[wrong].cpu(), y[wrong].cpu(), pred[wrong].cpu()))

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        """The test confusion matrix (synced across processes) and sample images: examples by class, then mistakes."""
        report: dict[str, Any] = {"confusion_matrix": self.confusion.compute().cpu().numpy()}
        if self.spec.is_text:
            return {**report, **self._text_report(datamodule)}
        parts = []
        for kept, by_class in ((self._examples, True), (self._mistakes, False)):
            if kept:
                x, y, pred = (torch.cat(column) for column in zip(*kept, strict=True))
                order = torch.argsort(y, stable=True) if by_class else torch.arange(len(y))
                parts.append((x[order], y[order], pred[order]))
        if parts:
            report["samples"] = tuple(torch.cat(column).numpy() for column in zip(*parts, strict=True))
            if has_convolutions(self.net):
                report.update(self._inside_report(*report["samples"][:2]))
        return report

    def _inside_report(self, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """What the convolutions make of a few test images (the first ones of different classes), computed on what
        the net receives (resized and normalised by ``self.input``): ``filters``, ``feature_maps`` and
        ``convolution`` (see ``zoo.nets.inspect.look_inside``)."""
        firsts = np.unique(labels, return_index=True)[1]
        pick = np.sort(firsts)[:INSIDE_IMAGES]
        x = self.input(torch.from_numpy(images[pick]).to(self.device))
        inside = look_inside(self.net, x)
        if inside:
            names = self.spec.class_names
            inside["feature_maps"]["titles"] = [f"test image {i + 1}: {names[labels[k]]}" for i, k in enumerate(pick)]
        return inside

    def _text_report(self, datamodule: Any) -> dict[str, Any]:
        """Misclassified test texts (decoded by the data's tokenizer) and the embeddings of frequent words."""
        if not isinstance(datamodule, DecodesText):
            return {}
        names, report = self.spec.class_names, {}
        rows = [
            [datamodule.decode(ids), names[int(t)], names[int(p)], round(float(c), 4)]
            for part in self._mistakes
            for ids, t, p, c in zip(*part, strict=True)
        ][:TEXT_MISTAKES]
        report["misclassified"] = rows
        if isinstance(self.net, WordEmbeddings):
            embedding = self.net.embedding
            ids = datamodule.frequent_tokens(WORDS)
            texts = torch.full((len(ids), self.spec.input_shape[0]), self.spec.pad_id, device=self.device)
            at = -1 if getattr(datamodule, "padding_side", "right") == "left" else 0  # where the data puts a word
            texts[:, at] = torch.tensor(ids, device=self.device)  # each word as a one-word text, padded as in training
            with torch.no_grad():
                alone = self.net(texts)
            report["word_embeddings"] = (
                [datamodule.decode([i]) for i in ids],
                embedding.weight[ids].detach().float().cpu().numpy(),
                self.predicted_class(alone).cpu().numpy(),
            )
        return report

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table]:
        names = self.spec.class_names
        outputs: dict[str, Figure | Table] = {
            "confusion_matrix": Figure(plot_confusion_matrix, (report["confusion_matrix"], names))
        }
        if "samples" in report:
            outputs["predictions"] = Figure(plot_predictions, (*report["samples"], names))
        if "filters" in report:
            filters = report["filters"]
            outputs["filters"] = Figure(
                plot_filters, (filters["layer"], filters["weights"]), {"total": filters["total"]}
            )
            maps = report["feature_maps"]
            outputs["feature_maps"] = Figure(plot_feature_maps, (maps["inputs"], maps["stages"], maps["titles"]))
            outputs["convolution"] = Figure(plot_convolution, (report["convolution"],))
        if "word_embeddings" in report:
            outputs["word_embeddings"] = Figure(plot_word_embeddings, (*report["word_embeddings"], names))
        if "misclassified" in report:
            outputs["misclassified"] = Table(MISCLASSIFIED_COLUMNS, report["misclassified"])
        return outputs
