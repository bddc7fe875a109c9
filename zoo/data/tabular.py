"""Tabular data modules: the course's house prices, Boston housing, scikit-learn's bundled sets, any CSV file.

Each module loads a table, splits it (stratified where it fits, seeded by ``split_seed`` so the split is the
same whatever the training ``seed``), fits the preprocessing on the training split only, and serves in-memory
mini-batches. ``spec`` tells the task what it yields.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from zoo.data.files import separator_hint
from zoo.data.memory import InMemoryDataModule
from zoo.data.preprocess import TabularPreprocessor
from zoo.data.splits import split_indices
from zoo.errors import ZooError
from zoo.spec import CLASSIFICATION, REGRESSION, TABLE, TableSpec

log = logging.getLogger(__name__)


@dataclass
class Table:
    """A loaded data set before splitting: feature columns, one target column, and what kind of target it is."""

    features: pd.DataFrame
    target: pd.Series
    task: str
    class_names: list[str] = field(default_factory=list)  # classification: names in label order


class TabularDataModule(InMemoryDataModule):
    """Base for tables that fit in memory; subclasses implement ``load``."""

    input_kind = TABLE

    def __init__(
        self,
        name: str,
        batch_size: int | str = 32,
        eval_batch_size: int = 1024,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        standardize: bool = True,
        scale_target: bool = True,
        max_categories: int = 50,
    ) -> None:
        super().__init__(name, batch_size, eval_batch_size, test_fraction, val_fraction, split_seed)
        self.preprocessor = TabularPreprocessor(standardize=standardize, max_categories=max_categories)
        self.scale_target = scale_target

    def load(self) -> Table:
        """The whole table, before splitting."""
        raise NotImplementedError

    def build(self) -> TableSpec:
        table = self.load()
        table.features.columns = [str(c) for c in table.features.columns]  # the preprocessor keys columns by name
        _check_table(table, self.name)
        y = _encode_target(table)
        labels = y if table.task == CLASSIFICATION else None
        train_idx, test_idx, val_idx = split_indices(
            labels, len(y), (self.test_fraction, self.val_fraction), self.split_seed, self.name
        )
        self.preprocessor.fit(table.features.iloc[train_idx])
        x = torch.from_numpy(self.preprocessor.transform(table.features))
        y_t = torch.from_numpy(y)
        mean, std = [], []
        if table.task == REGRESSION:
            train_y = y[train_idx]
            mean = [float(train_y.mean())] if self.scale_target else [0.0]
            std = [float(train_y.std()) or 1.0] if self.scale_target else [1.0]
            y_t = y_t.float().unsqueeze(1)
        self.splits = {
            split: (x[idx], y_t[idx]) for split, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))
        }
        return TableSpec(
            name=self.name,
            task=table.task,
            input_shape=[x.shape[1]],
            num_train=len(train_idx),
            class_names=table.class_names if table.task == CLASSIFICATION else [],
            target_names=[str(table.target.name)] if table.task == REGRESSION else [],
            feature_names=self.preprocessor.feature_names,
            target_mean=mean,
            target_std=std,
        )

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the fitted preprocessing, so prediction applies the run's own scaling."""
        return {**super().state_dict(), "preprocessor": self.preprocessor.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.preprocessor.load_state_dict(state["preprocessor"])

    def feature_scaling(self) -> tuple[list[float], list[float]]:
        """Each feature column's training mean and std (``zoo.protocols.ScalesFeatures``): the numeric columns'
        own; missing indicators and one-hot columns are not scaled (0 and 1)."""
        numeric = self.preprocessor.state["numeric"]
        unscaled = len(self.preprocessor.feature_names) - len(numeric["names"])
        return [*numeric["mean"], *[0.0] * unscaled], [*numeric["std"], *[1.0] * unscaled]

    def encode(self, inputs: pd.DataFrame) -> torch.Tensor:
        """Rows with the training table's feature columns (others, such as the target, are ignored)."""
        state = self.preprocessor.state
        needed = [*state["numeric"]["names"], *state["categorical"]]
        missing = [c for c in needed if c not in inputs.columns]
        if missing:
            raise ZooError(f"input: columns {', '.join(missing)} missing; the model was trained on {', '.join(needed)}")
        try:
            return torch.from_numpy(self.preprocessor.transform(inputs))
        except (TypeError, ValueError) as err:
            raise ZooError(f"input: a numeric column holds text ({err}); give numbers as in training") from None


def _check_table(table: Table, name: str) -> None:
    if len(table.target) == 0:
        raise ZooError(f"data={name}: the data set has no rows; give a file with data in it")
    if table.task == CLASSIFICATION and table.target.nunique(dropna=True) < 2:
        only = table.target.dropna().unique()
        raise ZooError(
            f"data={name}: target '{table.target.name}' has a single class ({only[0] if len(only) else 'none'}); "
            "classification needs at least two"
        )


def _encode_target(table: Table) -> np.ndarray:
    """Class labels become 0..K-1 (``table.class_names`` filled in order); regression targets become float32."""
    target = table.target
    if target.isna().any():
        first = int(np.flatnonzero(target.isna().to_numpy())[0])
        raise ZooError(
            f"target '{target.name}' is missing in row {first + 1} (from 1 after the header: line {first + 2} of a CSV "
            "file); drop or fill rows without a target first"
        )
    if table.task == REGRESSION:
        return target.to_numpy(dtype=np.float32, copy=True)
    if not table.class_names:
        table.class_names = [str(c) for c in sorted(target.unique())]
        keys = sorted(target.unique())
    else:
        keys = list(range(len(table.class_names)))
    lookup = {k: i for i, k in enumerate(keys)}
    return target.map(lookup).to_numpy(dtype=np.int64, copy=True)


# -- the data sets ----------------------------------------------------------------------------------------


class HousePricesDataModule(TabularDataModule):
    """The course's first example: a house's price (thousands) from its area in m², generated and seeded."""

    def __init__(self, n_samples: int = 200, noise: float = 25.0, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.noise, self.seed = n_samples, noise, seed

    def load(self) -> Table:
        rng = np.random.default_rng(self.seed)
        area = rng.uniform(40, 250, self.n_samples)
        price = 3.0 * area + 20.0 + rng.normal(0, self.noise, self.n_samples)
        return Table(pd.DataFrame({"area_m2": area}), pd.Series(price, name="price_k"), REGRESSION)


BOSTON_COLUMNS = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
BOSTON_TARGETS = ("price", "above_median")


class BostonDataModule(TabularDataModule):
    """mlxtend's bundled Boston housing (506 x 13): median price, or whether it is above the median."""

    def __init__(self, target: str = "price", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if target not in BOSTON_TARGETS:
            raise ZooError(f"data.target={target!r} is not a Boston target; choose one of {', '.join(BOSTON_TARGETS)}")
        self.target = target

    def load(self) -> Table:
        from mlxtend.data import boston_housing_data

        x, y = boston_housing_data()
        features = pd.DataFrame(x, columns=BOSTON_COLUMNS)
        if self.target == "price":
            return Table(features, pd.Series(y, name="MEDV"), REGRESSION)
        above = pd.Series((y > np.median(y)).astype(np.int64), name="above_median")
        return Table(features, above, CLASSIFICATION, class_names=["no", "yes"])


class SyntheticDataModule(TabularDataModule):
    """Generated classes around random centres in ``n_features`` dimensions: a seeded, learnable speed test."""

    def __init__(
        self, n_samples: int = 10_000, n_features: int = 784, n_classes: int = 10, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.n_features, self.n_classes, self.seed = n_samples, n_features, n_classes, seed

    def load(self) -> Table:
        rng = np.random.default_rng(self.seed)
        labels = rng.integers(0, self.n_classes, self.n_samples)
        centres = rng.normal(0, 1, (self.n_classes, self.n_features)).astype(np.float32)
        x = centres[labels] + rng.normal(0, 4, (self.n_samples, self.n_features)).astype(np.float32)
        return Table(pd.DataFrame(x), pd.Series(labels, name="label"), CLASSIFICATION)


SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


class SklearnDataModule(TabularDataModule):
    """scikit-learn's bundled classification sets: digits (8x8 images as 64 pixels), iris, wine, breast cancer."""

    def __init__(self, dataset: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dataset not in SKLEARN_SETS:
            raise ZooError(f"data.dataset={dataset!r} is not bundled; choose one of {', '.join(SKLEARN_SETS)}")
        self.dataset = dataset

    def load(self) -> Table:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{self.dataset}")()
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or None
        features = pd.DataFrame(bunch.data, columns=names)
        return Table(
            features,
            pd.Series(bunch.target, name="target"),
            CLASSIFICATION,
            class_names=[str(n) for n in bunch.target_names],
        )


TASKS = ("auto", CLASSIFICATION, REGRESSION)


class CsvDataModule(TabularDataModule):
    """Any CSV file: ``data.path``, ``data.target``; the task is inferred from the target unless ``data.task`` says."""

    def __init__(
        self,
        path: str,
        target: str,
        task: str = "auto",
        drop: list[str] | None = None,
        sep: str = ",",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if task not in TASKS:
            raise ZooError(f"data.task={task!r} is not valid; choose one of {', '.join(TASKS)}")
        self.path, self.target, self.task, self.drop, self.sep = (
            Path(path),
            target,
            task,
            list(drop or []),
            sep,
        )

    def load(self) -> Table:
        frame = self._read()
        if self.target not in frame.columns:
            raise ZooError(
                f"column '{self.target}' is not in {self.path}; set data.target to one of: "
                f"{', '.join(map(str, frame.columns))}{separator_hint(list(frame.columns), self.sep)}"
            )
        unknown = [c for c in self.drop if c not in frame.columns]
        if unknown:
            raise ZooError(f"data.drop names columns not in {self.path}: {', '.join(unknown)}")
        target = frame[self.target]
        features = frame.drop(columns=[self.target, *self.drop])
        task = self.task if self.task != "auto" else _infer_task(target)
        if self.task == "auto":
            log.info("data=%s: target '%s' looks like %s (set data.task to change)", self.name, self.target, task)
        if task == REGRESSION and not pd.api.types.is_numeric_dtype(target):
            bad = pd.to_numeric(target, errors="coerce").isna() & target.notna()
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ZooError(
                f"regression target '{self.target}' in {self.path} is not numeric ({target.iloc[row]!r} on line "
                f"{row + 2}); set data.task=classification or choose a numeric data.target"
            )
        return Table(features, target, task)

    def _read(self) -> pd.DataFrame:
        if not self.path.is_file():
            raise ZooError(f"data.path: file '{self.path}' not found; give the path of an existing CSV file")
        try:
            frame = pd.read_csv(self.path, sep=self.sep)
        except pd.errors.EmptyDataError:
            raise ZooError(f"data.path: '{self.path}' is empty; give a CSV file with a header and rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ZooError(f"data.path: cannot parse '{self.path}' as CSV ({str(err).splitlines()[0]})") from None
        if frame.empty:
            raise ZooError(f"data.path: '{self.path}' has a header but no rows; give a CSV file with data in it")
        return frame


def _infer_task(target: pd.Series) -> str:
    """Strings and booleans are classes; so are integers with at most 10 distinct values."""
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return CLASSIFICATION
    values = target.dropna()
    if len(values) and (values == values.round()).all() and values.nunique() <= 10:
        return CLASSIFICATION
    return REGRESSION
