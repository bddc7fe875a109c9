"""Triplet-loss embeddings (FaceNet, Schroff et al. 2015): a net maps each image to a point on the unit sphere so that
an anchor lies closer to a positive (same class) than to a negative (another class) by at least ``margin``.

Distances are squared Euclidean between L2-normalised embeddings, as in FaceNet: they lie in [0, 4] and equal
``2 - 2 * cosine similarity``. Triplets are mined inside each training batch, so a batch needs two or more samples
of some class and one of another (random batches of 64 on 10 classes always have them); a batch without any valid
triplet gives a zero loss that still back-propagates (zero gradients, never NaN).

The net is judged by what embeddings are for: ``knn_acc`` classifies each validation or test image by its nearest
training embeddings, and ``test/verify_acc`` answers "same class?" for every pair of test images by thresholding
their distance (balanced accuracy at the best threshold, logged as ``test/verify_threshold``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from zoo.errors import ZooError
from zoo.plots import plot_embeddings
from zoo.protocols import ReferenceSplit
from zoo.report import Figure, Table
from zoo.tasks.base import SupervisedTask

MINING = ("semihard", "hard", "all")
VERIFY_MAX = 4096  # test embeddings paired for verification: about 8.4 M pairs, sorted once


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``[len(a), len(b)]``; clamped at 0, as rounding leaves some slightly negative."""
    return (a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)).clamp_min(0)


def triplet_loss(
    distances: torch.Tensor, labels: torch.Tensor, margin: float, mining: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's triplet loss from its ``[B, B]`` distances, and the share of the mined triplets that are active
    (inside the margin, so they move the embeddings).

    - ``semihard`` (FaceNet; TensorFlow Addons' ``TripletSemiHardLoss``): for each anchor-positive pair, the nearest
      negative farther than the positive; where every negative is nearer, the farthest one. Mean over the pairs.
    - ``hard`` (batch-hard, Hermans et al. 2017): per anchor, its farthest positive against its nearest negative.
      Mean over the anchors.
    - ``all``: every valid triplet, averaged over the active ones (averaging over all would shrink the gradient as
      most triplets become easy).
    """
    b = len(labels)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(b, dtype=torch.bool, device=labels.device)  # (anchor, positive) pairs
    negative = ~same
    n_negatives = negative.sum(1)
    if mining == "hard":
        hardest_positive = (distances * positive).amax(1)  # distances are >= 0: masked entries never win
        nearest_negative = distances.masked_fill(~negative, float("inf")).amin(1)
        valid = positive.any(1) & (n_negatives > 0)
        losses = torch.where(valid, (hardest_positive - nearest_negative + margin).clamp_min(0), 0)
        count = valid.sum().clamp_min(1)
        return losses.sum() / count, (losses > 0).sum() / count
    # Each anchor's negatives sorted nearest first (+inf past the last): one searchsorted per anchor-positive pair
    # finds its semi-hard negative, or how many negatives lie inside its margin, in O(B^2) memory rather than B^3.
    nearest_first = distances.masked_fill(~negative, float("inf")).sort(1).values
    valid = positive & (n_negatives > 0)[:, None]
    if mining == "semihard":
        farther = torch.searchsorted(nearest_first, distances.detach().contiguous(), right=True)
        found = farther < n_negatives[:, None]
        semihard = nearest_first.gather(1, farther.clamp_max(b - 1))
        farthest = nearest_first.gather(1, (n_negatives - 1).clamp_min(0)[:, None]).expand(b, b)
        losses = torch.where(valid, (distances - torch.where(found, semihard, farthest) + margin).clamp_min(0), 0)
        count = valid.sum().clamp_min(1)
        return losses.sum() / count, (losses > 0).sum() / count
    # all: the active negatives of pair (a, p) are the first `inside` of a's sorted row (d_an < d_ap + margin), whose
    # summed loss is inside * (d_ap + margin) - (sum of those distances), read off a running sum.
    limit = distances + margin
    inside = torch.where(valid, torch.searchsorted(nearest_first, limit.detach().contiguous()), 0)
    ranks = torch.arange(b, device=labels.device)
    finite = torch.where(ranks < n_negatives[:, None], nearest_first, 0)
    running = F.pad(finite.cumsum(1), (1, 0))  # running[a, k]: the k nearest negatives' distances summed
    total = torch.where(valid, inside * limit - running.gather(1, inside), 0).sum()
    active = inside.sum()
    return total / active.clamp_min(1), active / (positive.sum(1) * n_negatives).sum().clamp_min(1)


def knn_predict(
    queries: torch.Tensor, references: torch.Tensor, reference_labels: torch.Tensor, k: int, num_classes: int
) -> torch.Tensor:
    """The class of each query by a vote of its ``k`` nearest references; a tie goes to the class of the nearest."""
    k = min(k, len(references))
    nearest = pairwise_distances(queries, references).topk(k, dim=1, largest=False).indices  # nearest first
    labels = reference_labels[nearest]
    votes = torch.zeros(len(queries), num_classes, dtype=torch.long, device=queries.device)
    votes.scatter_add_(1, labels, torch.ones_like(labels))
    ranks = torch.arange(k, device=queries.device).expand_as(labels)
    first = torch.full_like(votes, k).scatter_reduce_(1, labels, ranks, "amin")  # each class's nearest rank
    return (votes * (k + 1) - first).argmax(1)


def verification_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Balanced accuracy (mean of the same-class and the different-class pairs' accuracy, so the many more
    different-class pairs do not dominate) of "same class when distance <= threshold" over every pair, at the best
    threshold; returns ``(accuracy, threshold)``. Needs pairs of both kinds."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    distances = pairwise_distances(embeddings, embeddings)[i, j]
    order = distances.argsort()
    distances, same = distances[order], (labels[i] == labels[j])[order]
    accepted_same = same.cumsum(0)  # threshold at distances[t]: pairs 0..t are called "same"
    accepted_different = (~same).cumsum(0)
    n_same, n_different = accepted_same[-1].clamp_min(1), accepted_different[-1].clamp_min(1)
    balanced = (accepted_same / n_same + 1 - accepted_different / n_different) / 2
    run_end = torch.ones_like(same)
    run_end[:-1] = distances[1:] > distances[:-1]  # equal distances are accepted or refused together
    best = balanced.masked_fill(~run_end, -1).argmax()
    return float(balanced[best]), float(distances[best])


class TripletLoss(nn.Module):
    """:func:`triplet_loss` on embeddings: ``(loss, active share)``."""

    def __init__(self, margin: float, mining: str) -> None:
        super().__init__()
        self.margin, self.mining = margin, mining

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return triplet_loss(pairwise_distances(embeddings, embeddings), labels, self.margin, self.mining)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, mining={self.mining}"


class TripletTask(SupervisedTask):
    """Trains an embedding net with a triplet margin loss on any labelled image set; logs ``loss`` and ``knn_acc``
    per split, ``verify_acc`` and ``verify_threshold`` on test, ``active_triplets`` in training; predicts
    L2-normalised embeddings."""

    kind = "triplet embeddings"
    losses = ("triplet",)
    OPTIONS = ("embedding_dim", "margin", "mining", "knn_k")

    def __init__(
        self,
        *args,
        embedding_dim: int = 64,
        margin: float = 0.2,
        mining: str = "semihard",
        knn_k: int = 1,
        **kwargs,
    ) -> None:
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 2:
            raise ZooError(
                f"model.embedding_dim={embedding_dim!r} must be an integer >= 2 (embeddings are unit vectors)"
            )
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
            raise ZooError(f"model.margin={margin!r} must be > 0 (squared distances lie in [0, 4]; FaceNet used 0.2)")
        if mining not in MINING:
            raise ZooError(f"model.mining={mining!r} is not valid; choose one of {', '.join(MINING)}")
        if isinstance(knn_k, bool) or not isinstance(knn_k, int) or knn_k < 1:
            raise ZooError(f"model.knn_k={knn_k!r} must be a positive integer")
        # the base class sizes the net (num_outputs) and makes the loss in its __init__: these come first
        self.embedding_dim, self.margin, self.mining, self.knn_k = embedding_dim, margin, mining, knn_k
        super().__init__(*args, **kwargs)
        classes = self.spec.num_classes
        self.knn_acc = nn.ModuleDict({s: MulticlassAccuracy(classes, average="micro") for s in ("val", "test")})
        # plain attributes, never buffers: nothing of this lands in a checkpoint
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None  # training embeddings and labels
        self._test_parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._test_gathered: tuple[torch.Tensor, torch.Tensor] | None = None

    def default_loss(self) -> str:
        return "triplet"

    def num_outputs(self) -> int:
        return self.embedding_dim

    def make_loss(self, name: str) -> nn.Module:
        return TripletLoss(self.margin, self.mining)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """The embeddings, L2-normalised."""
        return F.normalize(out, dim=1)

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.predict(out), y)[0]

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The share of active triplets (mined again: a ``B x B`` sort, small beside the net's step)."""
        return {"active_triplets": self.loss_fn(self.predict(out), y)[1] * len(y)}

    # -- nearest neighbours among the training embeddings ----------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._reference = self._embed_reference()

    def on_validation_epoch_end(self) -> None:
        self._reference = None

    def _embed_reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split's embeddings and labels, from every process, with the weights as they are now."""
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, ReferenceSplit):
            raise ZooError(
                f"model=triplet: {type(datamodule).__name__} has no reference_dataloader() (the training split that "
                "knn_acc compares against); use an in-memory image data set"
            )
        embeddings, labels = [], []
        with torch.no_grad():  # the evaluation loop runs in eval mode without gradients; this holds outside it too
            for x, y in datamodule.reference_dataloader():
                embeddings.append(self.predict(self(x.to(self.device))))
                labels.append(y.to(self.device))
        return self._gather(torch.cat(embeddings), torch.cat(labels))

    def _gather(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each tensor's rows from every process, concatenated; ranks' slices may differ by a row, so they are
        padded to the longest for ``all_gather`` and cut back."""
        if self.trainer.world_size == 1:
            return tensors
        sizes = self.all_gather(torch.tensor(len(tensors[0]), device=self.device)).tolist()
        gathered = []
        for t in tensors:
            padded = torch.cat([t, t.new_zeros(max(sizes) - len(t), *t.shape[1:])])
            parts = self.all_gather(padded)  # [world, longest, ...]
            gathered.append(torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)]))
        return tuple(gathered)

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        references, labels = self._reference
        predicted = knn_predict(self.predict(out), references, labels, self.knn_k, self.spec.num_classes)
        self.knn_acc[split].update(predicted, y)
        self.log(f"{split}/knn_acc", self.knn_acc[split], prog_bar=split == "val")

    # -- test: verification and the embedding figure ----------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._reference = self._embed_reference()
        self._test_parts, self._test_gathered = [], None

    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self._test_parts.append((self.predict(out), y))

    def _test_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's test embeddings and labels (gathered once: the figure and the metric share them)."""
        if self._test_gathered is None:
            embeddings, labels = (torch.cat(column) for column in zip(*self._test_parts, strict=True))
            self._test_gathered = self._gather(embeddings, labels)
        return self._test_gathered

    def on_test_epoch_end(self) -> None:
        embeddings, labels = self._test_embeddings()
        if len(labels) > VERIFY_MAX:  # evenly spaced: the same subset on every process and every run
            keep = torch.linspace(0, len(labels) - 1, VERIFY_MAX, device=labels.device).long()
            embeddings, labels = embeddings[keep], labels[keep]
        accuracy, threshold = verification_accuracy(embeddings, labels)
        self.log("test/verify_acc", accuracy, sync_dist=True)  # the same on every process: the sync is a no-op
        self.log("test/verify_threshold", threshold, sync_dist=True)
        self._reference, self._test_parts, self._test_gathered = None, [], None

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        """The test embeddings and their labels, from every process."""
        embeddings, labels = self._test_embeddings()
        return {"embeddings": embeddings.cpu().numpy(), "labels": labels.cpu().numpy()}

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table]:
        return {"embeddings": Figure(plot_embeddings, (report["embeddings"], report["labels"], self.spec.class_names))}
