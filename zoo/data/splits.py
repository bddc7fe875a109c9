"""Train/validation/test splits shared by every in-memory data module: seeded, stratified where the classes allow."""

from __future__ import annotations

import math

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

    def stratify(subset: np.ndarray) -> np.ndarray | None:
        if labels is None:
            return None
        counts = np.bincount(labels[subset])
        return labels[subset] if counts[counts > 0].min() >= 2 else None

    rest, taken, left = np.arange(n), [], 1.0
    try:
        for fraction in fractions:
            rest, part = train_test_split(rest, fraction / left, seed, stratify(rest))
            taken.append(part)
            left -= fraction
    except ValueError as err:  # too few rows for the requested fractions
        raise ZooError(
            f"data={name}: cannot split {n} rows into train/val/test ({err}); "
            "use more rows or change data.test_fraction / data.val_fraction"
        ) from None
    return [np.sort(rest), *(np.sort(part) for part in taken)]


def train_test_split(
    items: np.ndarray, test_size: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``train_test_split(items, test_size=test_size, random_state=seed, stratify=stratify)``: the
    same draws from the same ``RandomState``, so the same rows land in each split, in numpy alone (importing
    scikit-learn takes a second of a short run on a 2-core CPU). Stratified, each class gives each side its share,
    the rounding left over drawn at random (scikit-learn's ``StratifiedShuffleSplit``)."""
    n = len(items)
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train <= 0:
        raise ValueError(f"a test share of {test_size:g} of {n} rows leaves none for training")
    rng = np.random.RandomState(seed)
    if stratify is None:
        order = rng.permutation(n)
        return items[order[n_test:]], items[order[:n_test]]
    classes, codes, counts = np.unique(stratify, return_inverse=True, return_counts=True)
    if min(n_train, n_test) < len(classes):
        raise ValueError(f"{n_train} training and {n_test} test rows cannot each hold all {len(classes)} classes")
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for rows, size, n_in_train, n_in_test in zip(members, counts, train_counts, test_counts, strict=True):
        shuffled = rows[rng.permutation(size)]
        train.extend(shuffled[:n_in_train])
        test.extend(shuffled[n_in_train : n_in_train + n_in_test])
    return items[rng.permutation(train)], items[rng.permutation(test)]


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``draws`` each class gives: its share rounded down, the rows still missing added to the classes
    with the largest remainders, ties broken at random (scikit-learn's ``_approximate_mode``)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    missing = int(draws - floored.sum())
    if missing > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add = min(len(tied), missing)
            floored[rng.choice(tied, size=add, replace=False)] += 1
            missing -= add
            if missing == 0:
                break
    return floored.astype(int)


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
