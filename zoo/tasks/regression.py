"""Regression: the net learns standardised targets; metrics are reported in the target's own units.

A linear regression on one or two inputs also shows what the first lesson draws: the path its optimiser took over
the loss surface L(w, b), the fitted line at the start, middle and end of training (and as an animation), and the
learnt w and b in the data's own units beside the least-squares solution (``zoo.tasks.linear``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from zoo.plots.gradient_descent import animate_fit, plot_fitted_lines, plot_loss_surface
from zoo.protocols import ScalesFeatures, SplitsInMemory
from zoo.report import Arrays, Figure, Table
from zoo.spec import REGRESSION
from zoo.tasks.base import SupervisedTask
from zoo.tasks.linear import (
    GradientDescentPath,
    dense_layer,
    distance_to_minimum,
    equation,
    in_data_units,
    loss_surface,
    path_losses,
)


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
        layer = dense_layer(self.net)
        self.path = GradientDescentPath(layer) if GradientDescentPath.fits(layer) else None
        self.facts: dict[str, Any] = {}

    def default_loss(self) -> str:
        return "mse"

    def num_outputs(self) -> int:
        return self.spec.num_targets

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out, self.loss_target(y))

    def loss_target(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.target_mean) / self.target_std

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.path is not None:  # w and b before this step: a point of the path over the loss surface
            self.path.record(self.current_epoch + 1)
        return super().training_step(batch, batch_idx)

    def graph_reason(self) -> str | None:
        if self.path is not None:
            return "the linear fit records its path over the loss surface at every step"
        return None

    def on_train_end(self) -> None:
        if self.path is not None and self.path.points:
            self.path.record(self.current_epoch)  # where the last step left them (the epochs are done)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out * self.target_std + self.target_mean

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        collection = self.metrics[split]
        pred = self.predict(out)
        collection.update(pred.squeeze(1), y.squeeze(1))
        self.log_dict(collection, sync_dist=True)

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        """A linear fit on one or two inputs: its path over the loss surface of the training split, and w and b in
        the data's own units against least squares."""
        if self.path is None or not self.path.points or not isinstance(datamodule, SplitsInMemory):
            return {}
        columns, rows = self.path.table()
        x, y = datamodule.splits["train"]
        target = self.loss_target(y.to(self.target_mean.device)).cpu()
        points = [r[2:] for r in rows]  # [w..., b] at each step
        surface = loss_surface(x, target, points, self.loss_fn)
        losses = path_losses(x, target, points, self.loss_fn)
        columns, rows = [*columns, "loss"], [[*r, loss] for r, loss in zip(rows, losses, strict=True)]
        mean, std = datamodule.feature_scaling() if isinstance(datamodule, ScalesFeatures) else ([0.0], [1.0])
        scale = (mean, std, float(self.target_mean[0]), float(self.target_std[0]))
        tested = torch.cat([self.path.layer.weight.detach()[0], self.path.layer.bias.detach()]).double().tolist()
        tested_line = in_data_units(tested, *scale)  # the weights the test used (the best checkpoint's)
        best = in_data_units(surface["solution"], *scale)
        names, target_name = self.spec.feature_names or ["x"], self.spec.target_names[0]
        last = in_data_units(rows[-1][2:-1], *scale)
        self.facts = {
            "learnt": equation(target_name, names, *last),
            "tested": equation(target_name, names, *tested_line),
            "least_squares": equation(target_name, names, *best),
            "w": last[0][0],
            "b": last[1],
            "steps": len(rows) - 1,
            "gap": distance_to_minimum(rows[-1][2:-1], surface["minimum"]),
            "first_loss": rows[0][-1],
            "last_loss": rows[-1][-1],
        }
        report = {"path": (columns, rows), "surface": surface, "facts": self.facts}
        if x.shape[1] == 1:  # the line over the data, in its own units
            halfway = (rows[0][-1] * rows[-1][-1]) ** 0.5  # the loss halfway down, on a log scale
            moments = [rows[0], next((r for r in rows if r[-1] <= halfway), rows[len(rows) // 2]), rows[-1]]
            lines = [(f"step {r[0]} (epoch {r[1]})", *in_data_units(r[2:-1], *scale)) for r in moments]
            report["data"] = (x[:, 0].double() * std[0] + mean[0]).numpy(), y[:, 0].double().numpy()
            report["lines"] = [(label, w[0], b) for label, w, b in lines]
            report["frames"] = [(r[0], r[1], r[-1], *in_data_units(r[2:-1], *scale)) for r in rows]
            report["names"] = (names[0], target_name)
        return report

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table | Arrays]:
        if not report:
            return {}
        facts, surface = report["facts"], report["surface"]
        print(f"after the last step: {facts['learnt']}   (least squares: {facts['least_squares']})", flush=True)
        if facts["tested"] != facts["learnt"]:
            print(f"tested checkpoint:   {facts['tested']}", flush=True)
        arrays = {k: surface[k] for k in ("x", "y", "loss", "minimum", "labels")}
        outputs: dict[str, Figure | Table | Arrays] = {
            "loss_surface": Figure(plot_loss_surface, (surface, facts)),
            "gd_path": Table(*report["path"]),
            "loss_surface.npz": Arrays(arrays),
            "coefficients": Table(
                ["weights", "equation"], [[k, facts[k]] for k in ("learnt", "tested", "least_squares")]
            ),
        }
        if "lines" in report:
            outputs["fitted_line"] = Figure(plot_fitted_lines, (*report["data"], report["lines"], report["names"]))
            outputs["gradient_descent"] = Figure(
                animate_fit, (*report["data"], report["frames"], report["names"]), suffix="gif"
            )
        return outputs
