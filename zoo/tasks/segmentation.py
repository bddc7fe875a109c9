"""Segmentation: a class for every pixel. Binary masks use one logit per pixel and BCE, several classes softmax and
cross-entropy; Dice loss alone or added to either. IoU and Dice come from one confusion matrix over all the
split's pixels (per class, then averaged over the classes other than background)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix

from zoo.errors import ZooError
from zoo.plots import plot_segmentation
from zoo.report import Figure, Table
from zoo.spec import BACKGROUND, SEGMENTATION
from zoo.tasks.base import SupervisedTask

SAMPLES = 8  # test images shown with their true and predicted masks
BINARY_LOSSES = ("bce", "bce+dice")


class SegmentationLoss(nn.Module):
    """``bce`` / ``cross_entropy`` per pixel, ``dice`` (1 - soft Dice, averaged over classes) or their sum."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.binary = name in BINARY_LOSSES
        self.pixel = name.split("+")[0] if name != "dice" else None
        self.dice = name.endswith("dice")

    def forward(self, out: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``out``: ``[N, K, H, W]`` logits (``K = 1`` for binary); ``masks``: ``[N, H, W]`` class indices."""
        masks = masks.long()
        loss = out.new_zeros(())
        if self.pixel == "bce":
            loss = loss + F.binary_cross_entropy_with_logits(out.squeeze(1), masks.float())
        elif self.pixel == "cross_entropy":
            loss = loss + F.cross_entropy(out, masks)
        if self.dice:
            loss = loss + soft_dice_loss(out, masks)
        return loss


def soft_dice_loss(out: torch.Tensor, masks: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - Dice between predicted probabilities and one-hot masks, per class over the batch, averaged over classes."""
    if out.shape[1] == 1:
        p = torch.sigmoid(out.squeeze(1))
        probs, target = torch.stack([1 - p, p], 1), torch.stack([1 - masks, masks], 1).float()
    else:
        probs = torch.softmax(out, 1)
        target = F.one_hot(masks, out.shape[1]).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    overlap = (probs * target).sum(dims)
    dice = (2 * overlap + eps) / (probs.sum(dims) + target.sum(dims) + eps)
    return 1 - dice.mean()


class SegmentationTask(SupervisedTask):
    """Logs ``loss``, ``iou`` and ``dice`` (means over the foreground classes), ``pixel_acc`` per split, and each
    class's IoU on the test split (``test/iou_<class>``); writes ``overlays.png`` and W&B mask overlays."""

    kind = SEGMENTATION
    losses = ("bce", "cross_entropy", "dice", "bce+dice", "cross_entropy+dice")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        k = self.spec.num_classes
        if self.loss_name in BINARY_LOSSES and k != 2:
            raise ZooError(
                f"model.loss={self.loss_name} needs two mask classes but data={self.spec.name} has {k}; "
                "use cross_entropy (or cross_entropy+dice)"
            )
        self.confusion = nn.ModuleDict({split: MulticlassConfusionMatrix(k) for split in ("val", "test")})
        # the mean leaves out the background (it would flatter any model on images that are mostly background)
        self.foreground = [i for i, name in enumerate(self.spec.class_names) if name != BACKGROUND] or list(range(k))
        self._samples: list[tuple[torch.Tensor, ...]] = []

    def default_loss(self) -> str:
        return "bce" if self.spec.num_classes == 2 else "cross_entropy"

    def make_loss(self, name: str) -> nn.Module:
        return SegmentationLoss(name)

    def num_outputs(self) -> int:
        return 1 if self.loss_name in BINARY_LOSSES else self.spec.num_classes

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out, y)

    def predicted_mask(self, out: torch.Tensor) -> torch.Tensor:
        return (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(1)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Per-pixel class probabilities ``[N, K, H, W]`` (two channels for a single-logit binary model)."""
        if out.shape[1] == 1:
            p = torch.sigmoid(out)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(out, dim=1)

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pixel_acc": (self.predicted_mask(out) == y).float().mean(dim=(1, 2)).sum()}

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        self.confusion[split].update(self.predicted_mask(out).flatten(), y.long().flatten())

    def scores(self, split: str) -> dict[str, torch.Tensor]:
        """IoU and Dice per class from the split's confusion matrix (synced across processes), and their means."""
        matrix = self.confusion[split].compute().double()
        hits = matrix.diag()
        truth, predicted = matrix.sum(1), matrix.sum(0)
        iou = hits / (truth + predicted - hits).clamp_min(1)
        dice = 2 * hits / (truth + predicted).clamp_min(1)
        present = (truth + predicted)[self.foreground] > 0  # a class absent from truth and prediction is no evidence
        fg = torch.tensor(self.foreground, device=matrix.device)[present]
        return {
            "iou": iou[fg].mean() if len(fg) else iou.new_ones(()),
            "dice": dice[fg].mean() if len(fg) else dice.new_ones(()),
            "pixel_acc": hits.sum() / matrix.sum().clamp_min(1),
            "per_class_iou": iou,
        }

    def _log_scores(self, split: str) -> None:
        scores = self.scores(split)
        per_class = scores.pop("per_class_iou")
        for key, value in scores.items():
            self.log(f"{split}/{key}", value.float(), prog_bar=key == "iou")
        if split == "test":
            for name, value in zip(self.spec.class_names, per_class, strict=True):
                self.log(f"test/iou_{name}", value.float())

    def on_validation_epoch_start(self) -> None:
        self.confusion["val"].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_start(self) -> None:
        self.confusion["test"].reset()
        self._samples = []

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        kept = sum(len(s[0]) for s in self._samples)
        if kept < SAMPLES:
            take = slice(0, SAMPLES - kept)
            self._samples.append((x[take].cpu(), y[take].cpu(), self.predicted_mask(out[take]).cpu()))

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        if not self._samples:
            return {}
        images, true, pred = (torch.cat(column).numpy() for column in zip(*self._samples, strict=True))
        return {"samples": (images, true.astype("uint8"), pred.astype("uint8"))}

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table]:
        return {"overlays": Figure(plot_segmentation, (*report["samples"], self.spec.class_names))}

    def wandb_images(self, report: dict[str, Any], written: dict[str, Path]) -> dict[str, tuple[list, dict]]:
        """The test images with W&B's interactive mask overlays (true and predicted, toggled in the UI)."""
        images, true, pred = report["samples"]
        labels = dict(enumerate(self.spec.class_names))

        def overlay(mask):
            return {"mask_data": mask, "class_labels": labels}

        masks = [{"predictions": overlay(p), "ground_truth": overlay(t)} for t, p in zip(true, pred, strict=True)]
        pictures = [
            image.transpose(1, 2, 0).squeeze(-1) if image.shape[0] == 1 else image.transpose(1, 2, 0)
            for image in images
        ]
        return {"masks": (pictures, {"masks": masks}), **super().wandb_images(report, written)}
