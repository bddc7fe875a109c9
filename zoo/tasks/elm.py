"""Extreme Learning Machine tasks (Huang 2006, the model-selection course): the net (``zoo.nets.elm.ELM``) is fitted
in closed form from one pass over the training set, with no optimiser and no backpropagation; classification and
regression are judged as any other model's."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.protocols import ClosedForm
from zoo.tasks.classification import ClassificationTask
from zoo.tasks.regression import RegressionTask


class ClosedFormFit:
    """Mixin over a supervised task whose net is :class:`zoo.protocols.ClosedForm`: every training batch goes to
    ``net.accumulate``, ``net.solve`` runs once after the pass, and training stops there (later epochs would repeat
    the same solve). The training batches are one ordered pass in evaluation-sized batches (``single_pass``)."""

    single_pass = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.net, ClosedForm):
            raise ZooError(
                f"model.net: {type(self.net).__name__} has no closed-form fit (accumulate, solve); use model=elm"
            )
        self.automatic_optimization = False

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.net.accumulate(self.input(x), self.solve_targets(y))

    def on_train_epoch_end(self) -> None:
        self.net.solve()
        self.trainer.should_stop = True
        super().on_train_epoch_end()

    def configure_optimizers(self) -> None:
        return None

    def solve_targets(self, y: torch.Tensor) -> torch.Tensor:
        """What the net fits for labels or targets ``y``."""
        raise NotImplementedError


class ELMClassificationTask(ClosedFormFit, ClassificationTask):
    def solve_targets(self, y: torch.Tensor) -> torch.Tensor:
        """One-hot rows; one ±1 column for a single logit, so that 0 is the decision threshold as with BCE."""
        if self.loss_name == "bce":
            return y.float().unsqueeze(1) * 2 - 1
        return nn.functional.one_hot(y, self.spec.num_classes).float()


class ELMRegressionTask(ClosedFormFit, RegressionTask):
    def solve_targets(self, y: torch.Tensor) -> torch.Tensor:
        """The standardised targets, what every regression net learns."""
        return (y - self.target_mean) / self.target_std
