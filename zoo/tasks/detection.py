"""Object detection: a grid net (``zoo.nets.detector``) trained YOLO-style and judged by COCO mean average precision.

Each true box is assigned to the 2x2 grid cells whose centres lie nearest its centre. The loss adds objectness
(binary cross-entropy over every cell, summed and divided by the number of assigned cells), the class (cross-entropy
on the assigned cells) and the box (GIoU, or L1 in strides, on the assigned cells). Predictions are the cells whose
score (objectness times the best class probability) passes ``score_threshold``, with per-class non-maximum
suppression at ``nms_iou``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

from zoo.errors import ZooError
from zoo.nets.detector import BOX_CHANNELS
from zoo.plots import plot_detections
from zoo.protocols import GridDetector
from zoo.report import Figure, Table
from zoo.spec import DETECTION
from zoo.tasks.base import SupervisedTask

SAMPLES = 16  # test images drawn with their true and predicted boxes
DRAW_SCORE = 0.5  # predictions drawn in the figure (the metric sees every one above score_threshold)
MAX_LOG_SIZE = 8.0  # tw, th are clamped: a box at most e^8 strides wide, and exp() never overflows
MAP_KEYS = ("map", "map_50", "map_75")


class BoxLoss(nn.Module):
    """The box term on assigned cells: ``giou`` (1 - generalised IoU) or ``l1`` (corner distance in strides)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, pred: torch.Tensor, true: torch.Tensor, stride: int) -> torch.Tensor:
        from torchvision.ops import generalized_box_iou_loss

        if self.kind == "giou":
            return generalized_box_iou_loss(pred, true, reduction="mean")
        return F.l1_loss(pred / stride, true / stride)


class DetectionTask(SupervisedTask):
    """Logs ``loss`` and COCO ``map`` (IoU 0.5:0.95), ``map_50`` and ``map_75`` on validation and test; predicts
    ``{"boxes", "scores", "labels"}`` per image, boxes as ``(x1, y1, x2, y2)`` input pixels."""

    kind = DETECTION
    losses = ("giou", "l1")
    OPTIONS = ("score_threshold", "nms_iou", "max_detections", "box_weight")

    def graph_reason(self) -> str | None:
        return "a box's cells are found from the labels (shapes that depend on the data)"

    def __init__(
        self,
        *args,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        max_detections: int = 100,
        box_weight: float = 2.0,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= score_threshold < 1:
            raise ZooError(f"model.score_threshold={score_threshold} must lie in [0, 1)")
        if not 0 < nms_iou <= 1:
            raise ZooError(f"model.nms_iou={nms_iou} must lie in (0, 1]")
        if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1:
            raise ZooError(f"model.max_detections={max_detections!r} must be a positive integer")
        if not box_weight > 0:
            raise ZooError(f"model.box_weight={box_weight} must be > 0")
        if not isinstance(self.net, GridDetector):
            raise ZooError(f"model.net: {type(self.net).__name__} is not a grid detector; use model=detector")
        self.score_threshold, self.nms_iou, self.max_detections = score_threshold, nms_iou, max_detections
        self.box_weight = box_weight
        self.height, self.width = self.spec.input_shape[1:]
        self.mean_ap = nn.ModuleDict({split: MeanAveragePrecision(box_format="xyxy") for split in ("val", "test")})
        self._terms: dict[str, torch.Tensor] = {}  # the last batch's loss terms, summed over the training epoch
        self._samples: list[tuple[torch.Tensor, torch.Tensor, list[dict[str, torch.Tensor]]]] = []

    def default_loss(self) -> str:
        return "giou"

    def num_outputs(self) -> int:
        return self.spec.num_classes

    def make_loss(self, name: str) -> nn.Module:
        return BoxLoss(name)

    # -- what the grid means -------------------------------------------------------------------------------
    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[N, 5 + K, Gh, Gw]`` -> boxes ``[N, G, 4]`` (input pixels), objectness logits ``[N, G]`` and class
        logits ``[N, G, K]``, cells in row-major order."""
        n, _, gh, gw = out.shape
        s = self.net.stride
        rows = torch.arange(gh, device=out.device, dtype=out.dtype).view(1, gh, 1)
        cols = torch.arange(gw, device=out.device, dtype=out.dtype).view(1, 1, gw)
        # the centre may lie up to a cell beyond this cell's centre (YOLOv5): neighbour cells learn it too
        cx = (cols + 2 * torch.sigmoid(out[:, 1]) - 0.5) * s
        cy = (rows + 2 * torch.sigmoid(out[:, 2]) - 0.5) * s
        w = s * torch.exp(out[:, 3].clamp(max=MAX_LOG_SIZE))
        h = s * torch.exp(out[:, 4].clamp(max=MAX_LOG_SIZE))
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).view(n, gh * gw, 4)
        classes = out[:, BOX_CHANNELS:].flatten(2).transpose(1, 2)
        return boxes, out[:, 0].flatten(1), classes

    def assign(self, y: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The cells that learn each true box (flat indices into ``N * Gh * Gw``) and the ``[class, x1, y1, x2, y2]``
        row each one learns. A box goes to the 2x2 cells whose centres lie nearest its centre (YOLOv5's neighbour
        cells: a centre near a cell border is not left to one unsure cell); a cell two boxes claim learns the one
        whose centre is nearer."""
        gh, gw = grid
        s = self.net.stride
        image, slot = (y[..., 0] >= 0).nonzero(as_tuple=True)
        rows = y[image, slot]
        cx, cy = (rows[:, 1] + rows[:, 3]) / (2 * s), (rows[:, 2] + rows[:, 4]) / (2 * s)  # in cells
        step = torch.tensor([0, 1, 0, 1], device=y.device), torch.tensor([0, 0, 1, 1], device=y.device)
        col = (cx - 0.5).floor().long()[:, None] + step[0]  # [boxes, 4]
        row = (cy - 0.5).floor().long()[:, None] + step[1]
        distance = torch.maximum((col + 0.5 - cx[:, None]).abs(), (row + 0.5 - cy[:, None]).abs())
        inside = (col >= 0) & (col < gw) & (row >= 0) & (row < gh)
        flat = (image[:, None] * (gh * gw) + row * gw + col)[inside]
        box = torch.arange(len(rows), device=y.device)[:, None].expand(-1, 4)[inside]
        distance = distance[inside]
        nearest = torch.full((len(y) * gh * gw,), torch.inf, device=y.device)
        nearest = nearest.scatter_reduce(0, flat, distance, "amin")
        win = distance <= nearest[flat]
        owner = torch.full((len(y) * gh * gw,), -1, dtype=torch.long, device=y.device)
        owner[flat[win]] = box[win]  # an exact tie keeps either box
        cells = (owner >= 0).nonzero().flatten()
        return cells, rows[owner[cells]]

    # -- training ------------------------------------------------------------------------------------------
    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = out.float()  # exp() and GIoU in full precision under bf16/fp16 mixed precision
        boxes, objectness, classes = self.decode(out)
        cells, targets = self.assign(y, out.shape[-2:])
        present = torch.zeros_like(objectness).flatten()
        present[cells] = 1.0
        count = max(len(cells), 1)
        terms = {"obj_loss": F.binary_cross_entropy_with_logits(objectness.flatten(), present, reduction="sum") / count}
        if len(cells):
            terms["cls_loss"] = F.cross_entropy(classes.flatten(0, 1)[cells], targets[:, 0].long())
            terms["box_loss"] = self.loss_fn(boxes.flatten(0, 1)[cells], targets[:, 1:], self.net.stride)
        else:  # no object in the batch: only objectness learns (keeps every term a tensor on the graph)
            terms["cls_loss"] = terms["box_loss"] = out.sum() * 0.0
        self._terms = {k: v.detach() for k, v in terms.items()}
        return terms["obj_loss"] + terms["cls_loss"] + self.box_weight * terms["box_loss"]

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms of the loss :meth:`data_loss` just computed for this batch: ``train/obj_loss``, ``cls_loss`` and
        ``box_loss`` per epoch show which one is left to learn."""
        return {key: value * len(y) for key, value in self._terms.items()}

    # -- predictions and metrics ---------------------------------------------------------------------------
    def predict(self, out: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` ``[k, 4]`` (x1, y1, x2, y2 in input pixels, clipped to the image), ``scores`` and
        ``labels`` ``[k]``, best first, after per-class non-maximum suppression."""
        from torchvision.ops import batched_nms

        boxes, objectness, classes = self.decode(out.float())
        probs, labels = torch.softmax(classes, dim=-1).max(dim=-1)
        scores = torch.sigmoid(objectness) * probs
        image, cell = (scores > self.score_threshold).nonzero(as_tuple=True)
        kept_boxes = boxes[image, cell]
        kept_boxes[:, 0::2] = kept_boxes[:, 0::2].clamp(0, self.width)
        kept_boxes[:, 1::2] = kept_boxes[:, 1::2].clamp(0, self.height)
        kept_scores, kept_labels = scores[image, cell], labels[image, cell]
        # one NMS call for the whole batch: boxes of different images or classes never suppress each other
        keep = batched_nms(kept_boxes, kept_scores, image * self.spec.num_classes + kept_labels, self.nms_iou)
        results = []
        for i in range(len(out)):
            mine = keep[image[keep] == i][: self.max_detections]  # batched_nms returns them best first
            results.append({"boxes": kept_boxes[mine], "scores": kept_scores[mine], "labels": kept_labels[mine]})
        return results

    @staticmethod
    def targets(y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """``[N, max_boxes, 5]`` rows -> per image ``{"boxes", "labels"}`` as torchmetrics expects them."""
        valid = y[..., 0] >= 0
        return [{"boxes": rows[keep, 1:], "labels": rows[keep, 0].long()} for rows, keep in zip(y, valid, strict=True)]

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        self.mean_ap[split].update(self.predict(out), self.targets(y))

    def _log_map(self, split: str) -> None:
        metric = self.mean_ap[split]
        values = metric.compute()  # gathers every rank's images first
        metric.reset()
        self.log_dict({f"{split}/{key}": values[key].float() for key in MAP_KEYS}, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_map("val")

    def on_test_epoch_start(self) -> None:
        self._samples = []

    def on_test_epoch_end(self) -> None:
        self._log_map("test")

    # -- test figures --------------------------------------------------------------------------------------
    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        room = SAMPLES - sum(len(s[0]) for s in self._samples)
        if room > 0:
            kept = [{k: v.cpu() for k, v in p.items()} for p in self.predict(out[:room])]
            self._samples.append((x[:room].cpu(), y[:room].cpu(), kept))

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        """The first test images with their true boxes and the predictions."""
        if not self._samples:
            return {}
        images = torch.cat([s[0] for s in self._samples]).numpy()
        truth = [t[t[:, 0] >= 0].numpy() for s in self._samples for t in s[1]]
        predictions = [{k: v.numpy() for k, v in p.items()} for s in self._samples for p in s[2]]
        return {"samples": (images, truth, predictions)}

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table]:
        draw = Figure(plot_detections, (*report["samples"], self.spec.class_names), {"min_score": DRAW_SCORE})
        return {"detections": draw}

    def wandb_images(self, report: dict[str, Any], written: dict[str, Path]) -> dict[str, tuple[list, dict]]:
        """The test images with W&B's interactive box overlays: predictions (with scores, filterable there) and
        ground truth."""
        images, truth, predictions = report["samples"]
        class_labels = dict(enumerate(self.spec.class_names))
        overlays = []
        for t, p in zip(truth, predictions, strict=True):
            found = [
                _wandb_box(box, int(label), f"{class_labels[int(label)]} {score:.2f}", {"score": float(score)})
                for box, label, score in zip(p["boxes"], p["labels"], p["scores"], strict=True)
            ]
            true = [_wandb_box(row[1:], int(row[0]), class_labels[int(row[0])]) for row in t]
            overlays.append(
                {
                    "predictions": {"box_data": found, "class_labels": class_labels},
                    "ground_truth": {"box_data": true, "class_labels": class_labels},
                }
            )
        pictures = [image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0) for image in images]
        return {"detections": (pictures, {"boxes": overlays})}


def _wandb_box(box, class_id: int, caption: str, scores: dict[str, float] | None = None) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in box)
    entry: dict[str, Any] = {
        "position": {"minX": x1, "minY": y1, "maxX": x2, "maxY": y2},
        "domain": "pixel",
        "class_id": class_id,
        "box_caption": caption,
    }
    if scores is not None:
        entry["scores"] = scores
    return entry
