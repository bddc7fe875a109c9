"""Train/validation/test splits shared by every in-memory data module: seeded, stratified where the classes allow."""

from __future__ import annotations

import numpy as np

from zoo.errors import ZooError


def split_indices(
    labels: np.ndarray | None,
    n: int,
    fractions: tuple[float, ...],
    seed: int,
    name: str,
) -> list[np.ndarray]:
    """Split ``range(n)`` into ``len(fractions) + 1`` sorted index sets: the first takes what the fractions leave.

    ``fractions`` are shares of ``n`` (e.g. ``(test, val)``); each later cut is stratified by ``labels`` when every
    class has at least two members, so class proportions hold in every split.
    """
    from sklearn.model_selection import train_test_split

    def stratify(subset: np.ndarray) -> np.ndarray | None:
        if labels is None:
            return None
        counts = np.bincount(labels[subset])
        return labels[subset] if counts[counts > 0].min() >= 2 else None

    rest, taken, left = np.arange(n), [], 1.0
    try:
        for fraction in fractions:
            rest, part = train_test_split(rest, test_size=fraction / left, random_state=seed, stratify=stratify(rest))
            taken.append(part)
            left -= fraction
    except ValueError as err:  # too few rows for the requested fractions
        raise ZooError(
            f"data={name}: cannot split {n} rows into train/val/test ({err}); "
            "use more rows or change data.test_fraction / data.val_fraction"
        ) from None
    return [np.sort(rest), *(np.sort(part) for part in taken)]


def check_fractions(test_fraction: float, val_fraction: float) -> None:
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ZooError(
            f"data.test_fraction={test_fraction} and data.val_fraction={val_fraction} must each lie in (0, 1) "
            "and sum to less than 1"
        )


def check_batch_size(value: object, key: str = "data.batch_size", full: str | None = None) -> int | str:
    """A positive integer, or ``full`` (the whole training set) where the data module allows it."""
    if full is not None and value == full:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        hint = f", or '{full}' for the whole training set" if full else ""
        raise ZooError(f"{key}={value!r} is not valid; use a positive integer{hint}")
    return value
