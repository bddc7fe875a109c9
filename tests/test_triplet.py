"""Triplet-loss embeddings: the mining rules on hand-made distances, the kNN and verification metrics on constructed
embeddings, option errors, a run's outputs and its evaluation from the checkpoint, and the accuracy goal on digits."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import compose
from zoo.errors import ZooError
from zoo.run import build_datamodule, build_task, evaluate, task_from_checkpoint
from zoo.tasks.triplet import (
    MINING,
    TripletLoss,
    knn_predict,
    pairwise_distances,
    triplet_loss,
    verification_accuracy,
)

MARGIN = 0.2


def _distances(anchor_row: list[float]) -> torch.Tensor:
    """Five samples: anchor 0 and its positive 1 (class 0), then negatives 2, 3, 4 (classes 1, 2, 3). Row 0 is
    ``anchor_row``; everything else lies 2.0 apart, so the positive as an anchor never violates the margin."""
    d = torch.full((5, 5), 2.0, dtype=torch.float64)
    d.fill_diagonal_(0)
    d[0], d[:, 0] = torch.tensor(anchor_row, dtype=torch.float64), torch.tensor(anchor_row, dtype=torch.float64)
    return d.requires_grad_()


LABELS = torch.tensor([0, 0, 1, 2, 3])
# the anchor: positive at 0.09; negatives at 0.04 (nearer: hard), 0.16 (semi-hard: farther, inside the margin), 1.0
SPREAD = [0.0, 0.09, 0.04, 0.16, 1.0]


def test_semihard_picks_the_nearest_negative_farther_than_the_positive():
    d = _distances(SPREAD)
    loss, active = triplet_loss(d, LABELS, MARGIN, "semihard")
    loss.backward()
    assert loss.item() == pytest.approx((0.09 - 0.16 + MARGIN) / 2)  # two anchor-positive pairs, one active
    assert active.item() == pytest.approx(0.5)
    assert d.grad[0, 3] < 0 and d.grad[0, 2] == 0 and d.grad[0, 4] == 0  # only the semi-hard negative is pushed


def test_semihard_falls_back_to_the_farthest_negative_when_all_are_nearer():
    d = _distances([0.0, 0.5, 0.04, 0.16, 0.3])
    loss, _ = triplet_loss(d, LABELS, MARGIN, "semihard")
    loss.backward()
    assert loss.item() == pytest.approx((0.5 - 0.3 + MARGIN) / 2)
    assert d.grad[0, 4] < 0 and d.grad[0, 2] == 0 and d.grad[0, 3] == 0


def test_hard_picks_the_nearest_negative_and_all_averages_the_active_triplets():
    d = _distances(SPREAD)
    loss, active = triplet_loss(d, LABELS, MARGIN, "hard")
    loss.backward()
    assert loss.item() == pytest.approx((0.09 - 0.04 + MARGIN) / 2)  # two anchors have a positive
    assert d.grad[0, 2] < 0 and d.grad[0, 3] == 0 and d.grad[0, 4] == 0
    loss, active = triplet_loss(_distances(SPREAD), LABELS, MARGIN, "all")
    assert loss.item() == pytest.approx(((0.09 - 0.04 + MARGIN) + (0.09 - 0.16 + MARGIN)) / 2)
    assert active.item() == pytest.approx(2 / 6)  # 2 (anchor, positive) pairs x 3 negatives, two inside the margin


def _reference_loss(d: torch.Tensor, y: list[int], mining: str) -> float:
    """The mining rules written as loops over every triplet."""
    b = len(y)
    pos = [[p for p in range(b) if p != a and y[p] == y[a]] for a in range(b)]
    neg = [[n for n in range(b) if y[n] != y[a]] for a in range(b)]
    if mining == "hard":
        losses = [max(max(d[a, p] for p in pos[a]) - min(d[a, n] for n in neg[a]) + MARGIN, 0) for a in range(b)]
        return sum(losses) / len(losses)
    if mining == "semihard":
        losses = []
        for a in range(b):
            for p in pos[a]:
                farther = [d[a, n] for n in neg[a] if d[a, n] > d[a, p]]
                losses.append(max(d[a, p] - (min(farther) if farther else max(d[a, n] for n in neg[a])) + MARGIN, 0))
        return sum(losses) / len(losses)
    terms = [d[a, p] - d[a, n] + MARGIN for a in range(b) for p, n in itertools.product(pos[a], neg[a])]
    active = [t for t in terms if t > 0]
    return sum(active) / len(active)


@pytest.mark.parametrize("mining", MINING)
def test_mining_matches_the_definition_on_random_batches(mining):
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        embeddings = F.normalize(torch.randn(24, 3, generator=gen, dtype=torch.float64), dim=1)
        labels = torch.arange(24) % 4  # every anchor has positives and negatives
        d = pairwise_distances(embeddings, embeddings)
        loss, _ = triplet_loss(d, labels, MARGIN, mining)
        assert loss.item() == pytest.approx(float(_reference_loss(d.detach(), labels.tolist(), mining)))


@pytest.mark.parametrize("mining", MINING)
@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5]], ids=["no positives", "no negatives"])
def test_a_batch_without_triplets_gives_zero_loss_and_finite_gradients(mining, labels):
    embeddings = torch.randn(4, 8, requires_grad=True)
    loss, active = TripletLoss(MARGIN, mining)(F.normalize(embeddings, dim=1), torch.tensor(labels))
    loss.backward()
    assert loss.item() == 0 and active.item() == 0
    assert torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("mining", MINING)
def test_collapsed_embeddings_give_the_margin_and_finite_gradients(mining):
    embeddings = torch.ones(6, 8, requires_grad=True)  # every distance 0: where a square root would give NaN
    loss, active = TripletLoss(MARGIN, mining)(F.normalize(embeddings, dim=1), torch.tensor([0, 0, 0, 1, 1, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(MARGIN) and active.item() == 1
    assert torch.isfinite(embeddings.grad).all()


def _clusters(per_class: int, noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes around orthogonal unit vectors, ``noise`` apart within a class."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(4).repeat_interleave(per_class)
    return F.normalize(torch.eye(8)[labels] + noise * torch.randn(len(labels), 8, generator=gen), dim=1), labels


def test_knn_and_verification_are_perfect_on_separated_classes():
    references, reference_labels = _clusters(20, 0.05, seed=0)
    queries, labels = _clusters(10, 0.05, seed=1)
    for k in (1, 5):
        assert torch.equal(knn_predict(queries, references, reference_labels, k, 4), labels)
    accuracy, threshold = verification_accuracy(queries, labels)
    d = pairwise_distances(queries, queries)
    same = labels[:, None] == labels[None, :]
    assert accuracy == 1.0
    assert d[same].max() <= threshold < d[~same].min()


def test_knn_votes_and_breaks_ties_by_the_nearest():
    references = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    queries = torch.tensor([[0.9], [0.1]])
    # query 0.9: neighbours 1.0 (class 1), 0.0 (class 0), 2.0 (class 1) -> 1 by two votes to one
    assert knn_predict(queries, references, torch.tensor([0, 1, 1, 2]), 3, 3).tolist()[0] == 1
    # query 0.1: neighbours 0.0 (class 2), 1.0 (class 0), 2.0 (class 1) -> a three-way tie, won by the nearest
    assert knn_predict(queries, references, torch.tensor([2, 0, 1, 1]), 3, 3).tolist()[1] == 2


def test_verification_of_collapsed_embeddings_is_chance_not_the_share_of_different_pairs():
    labels = torch.arange(10).repeat(3)  # 9 in 10 pairs are of different classes
    accuracy, _ = verification_accuracy(torch.ones(30, 4) / 2, labels)
    assert accuracy == pytest.approx(0.5)  # calling every pair "different" would score 0.9 as plain accuracy


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.margin=0", "model.margin=0 must be > 0"),
        ("model.mining=hardest", "model.mining='hardest' is not valid; choose one of semihard, hard, all"),
        ("model.embedding_dim=1", "model.embedding_dim=1 must be an integer >= 2"),
        ("model.knn_k=0", "model.knn_k=0 must be a positive integer"),
        ("model.loss=cross_entropy", "model.loss='cross_entropy' does not fit triplet embeddings .*one of triplet"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, override, message):
    cfg = compose(["model=triplet", "data=digits", override], tmp_path)
    with pytest.raises(ZooError, match=message) as err:
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("iris", "model=triplet needs images but data=iris is a table of 4 features"),
        ("boston", "model=triplet does classification but data=boston is a regression data set"),
    ],
)
def test_tables_and_regression_data_are_refused(tmp_path, data, message):
    cfg = compose(["model=triplet", f"data={data}"], tmp_path)
    with pytest.raises(ZooError, match=message):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


def test_run_writes_metrics_and_the_embedding_figure_and_eval_reproduces_it(train_run, tmp_path):
    metrics, out = train_run(
        "model=triplet", "data=digits", "data.train_per_class=30", "data.batch_size=60", "trainer.max_epochs=3"
    )
    assert metrics["test/knn_acc"] > 0.8 and metrics["test/verify_acc"] > 0.75
    assert 0 < metrics["test/verify_threshold"] < 4  # squared distances between unit vectors
    assert (out / "embeddings.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert all(0 <= float(r["train/active_triplets"]) <= 1 and "val/knn_acc" in r for r in rows)

    ckpt = next((out / "checkpoints").glob("best-*.ckpt"))
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert all(k.startswith(("net.", "input.")) for k in checkpoint["state_dict"])  # no embeddings stored
    task = task_from_checkpoint(checkpoint)
    assert (task.margin, task.mining, task.embedding_dim) == (0.2, "semihard", 64)
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    embeddings = task.eval().predict_step(images, 0)
    assert embeddings.shape == (5, 64) and torch.allclose(embeddings.norm(dim=1), torch.ones(5))

    cfg = compose([f"ckpt_path={ckpt}"], tmp_path, config_name="eval", folder="eval")
    again = evaluate(cfg)
    assert again == pytest.approx(metrics, abs=1e-5)
    assert (Path(cfg.paths.output_dir) / "embeddings.png").exists()
