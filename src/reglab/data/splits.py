"""Train / validation / test row indices: random (stratified when the classes allow it),
consecutive, or subsets of an official split."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _stratifiable(labels: np.ndarray | None, first: int, second: int) -> bool:
    """Whether a stratified split of ``labels`` into parts of these sizes is possible."""
    if labels is None:
        return False
    counts = np.unique(labels, return_counts=True)[1]
    return counts.min() >= 2 and min(first, second) >= len(counts)


def _two_way(
    indices: np.ndarray, second: float | int, seed: int, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into two random parts, the second of ``second`` samples (a count)
    or share (a fraction); stratified by ``labels`` (aligned with ``indices``) when the
    class counts allow it."""
    from sklearn.model_selection import train_test_split

    n = len(indices)
    is_fraction = isinstance(second, (float, np.floating))
    n_second = math.ceil(second * n) if is_fraction else int(second)
    stratify = labels if _stratifiable(labels, n - n_second, n_second) else None
    size = float(second) if is_fraction else n_second
    first, rest = train_test_split(indices, test_size=size, random_state=seed, stratify=stratify)
    return first, rest


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test index arrays covering ``range(n)``, stratified when
    given labels (and every class has enough samples for it)."""
    indices = np.arange(n)
    holdout = val_fraction + test_fraction
    if holdout == 0:
        return indices, indices[:0], indices[:0]
    train, rest = _two_way(indices, holdout, seed, stratify)
    if test_fraction == 0:
        return train, rest, indices[:0]
    if val_fraction == 0:
        return train, indices[:0], rest
    rest_labels = stratify[rest] if stratify is not None else None
    val, test = _two_way(rest, test_fraction / holdout, seed, rest_labels)
    return train, val, test


def _at(labels: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if labels is None else labels[index]


def _subset(index: np.ndarray, size: int | None, seed: int, labels: np.ndarray | None) -> np.ndarray:
    """A random (stratified when possible) subset of ``size`` entries; all when None or
    not smaller than ``index``."""
    if size is None or size >= len(index):
        return index
    rest, kept = _two_way(index, int(size), seed, labels)
    return kept


def ordered_split(sizes: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Consecutive index ranges of the given sizes: ``(3, 2)`` -> ``[0, 1, 2], [3, 4]``."""
    bounds = np.cumsum([0, *sizes])
    return tuple(np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes)))
