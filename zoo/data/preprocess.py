"""Tabular preprocessing fitted on the training split only, with its state kept as plain types.

Numeric columns: missing values filled with the training median plus a missing-indicator column, then
standardised with training statistics. Categorical columns: one-hot, missing values as their own category,
categories unseen in training encoded as all zeros.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MISSING = "<missing>"


class TabularPreprocessor:
    """Turns a DataFrame of mixed columns into a float32 matrix, the same way at train, eval and predict time."""

    def __init__(self, standardize: bool = True, max_categories: int = 50) -> None:
        self.standardize = standardize
        self.max_categories = max_categories
        self.state: dict[str, Any] = {}

    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        is_numeric = [pd.api.types.is_bool_dtype(frame[c]) or pd.api.types.is_numeric_dtype(frame[c]) for c in frame]
        numeric_cols = [c for c, num in zip(frame.columns, is_numeric, strict=True) if num]
        values = frame[numeric_cols].to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values).any(axis=0)
        with np.errstate(all="ignore"):
            medians = np.nan_to_num(np.nanmedian(values, axis=0)) if len(values) else np.zeros(len(numeric_cols))
            filled = np.where(np.isnan(values), medians, values)
            means = filled.mean(axis=0) if self.standardize else np.zeros(len(numeric_cols))
            stds = filled.std(axis=0) if self.standardize else np.ones(len(numeric_cols))
        stds = np.where(stds > 0, stds, 1.0)
        numeric = {
            "names": [str(c) for c in numeric_cols],
            "median": medians.tolist(),
            "mean": means.tolist(),
            "std": stds.tolist(),
            "indicator": missing.tolist(),
        }
        categorical, dropped = {}, []
        for col in (c for c, num in zip(frame.columns, is_numeric, strict=True) if not num):
            cats = sorted(frame[col].astype("string").fillna(MISSING).unique().tolist())
            if len(cats) > self.max_categories:
                dropped.append(str(col))
            else:
                categorical[str(col)] = cats
        if dropped:
            log.warning(
                "dropped categorical columns with more than %d distinct values (ids, names?): %s; "
                "raise data.max_categories to keep them",
                self.max_categories,
                ", ".join(dropped),
            )
        self.state = {"numeric": numeric, "categorical": categorical, "dropped": dropped}
        return self

    @property
    def feature_names(self) -> list[str]:
        numeric = self.state["numeric"]
        names = list(numeric["names"])
        names += [f"{n}_missing" for n, ind in zip(numeric["names"], numeric["indicator"], strict=True) if ind]
        for col, cats in self.state["categorical"].items():
            names.extend(f"{col}={cat}" for cat in cats)
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Columns in ``feature_names`` order: numeric, missing indicators, one-hot categories."""
        numeric = self.state["numeric"]
        values = frame[numeric["names"]].to_numpy(dtype=np.float64, na_value=np.nan)
        nan = np.isnan(values)
        filled = np.where(nan, np.asarray(numeric["median"]), values)
        parts = [(filled - np.asarray(numeric["mean"])) / np.asarray(numeric["std"])]
        parts.append(nan[:, np.asarray(numeric["indicator"], dtype=bool)].astype(np.float64))
        for col, cats in self.state["categorical"].items():
            codes = frame[col].astype("string").fillna(MISSING).to_numpy()
            parts.append((codes[:, None] == np.asarray(cats, dtype=object)[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"standardize": self.standardize, "max_categories": self.max_categories, **self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.standardize = state.pop("standardize")
        self.max_categories = state.pop("max_categories")
        self.state = state
