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
        numeric, categorical, dropped = [], {}, []
        for col in frame.columns:
            values = frame[col]
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                filled = values.astype(float)
                median = float(filled.median()) if filled.notna().any() else 0.0
                filled = filled.fillna(median)
                std = float(filled.std(ddof=0)) if self.standardize else 1.0
                numeric.append(
                    {
                        "name": str(col),
                        "median": median,
                        "mean": float(filled.mean()) if self.standardize else 0.0,
                        "std": std if std > 0 else 1.0,
                        "indicator": bool(values.isna().any()),
                    }
                )
            else:
                cats = sorted(values.astype("string").fillna(MISSING).unique().tolist())
                if len(cats) > self.max_categories:
                    dropped.append(str(col))
                    continue
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
        names = []
        for col in self.state["numeric"]:
            names.append(col["name"])
            if col["indicator"]:
                names.append(f"{col['name']}_missing")
        for col, cats in self.state["categorical"].items():
            names.extend(f"{col}={cat}" for cat in cats)
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for col in self.state["numeric"]:
            values = frame[col["name"]].astype(float)
            parts.append(((values.fillna(col["median"]) - col["mean"]) / col["std"]).to_numpy()[:, None])
            if col["indicator"]:
                parts.append(values.isna().to_numpy(dtype=float)[:, None])
        for col, cats in self.state["categorical"].items():
            values = frame[col].astype("string").fillna(MISSING).to_numpy()
            parts.append((values[:, None] == np.asarray(cats, dtype=object)[None, :]).astype(float))
        if not parts:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"standardize": self.standardize, "max_categories": self.max_categories, **self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.standardize = state.pop("standardize")
        self.max_categories = state.pop("max_categories")
        self.state = state
