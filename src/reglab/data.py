"""Data modules that hold whole data sets as in-memory tensors.

Every source (embedded scikit-learn sets now; generated sets and user files build on
the same base) produces one feature array and one target array. The base class splits
them into train / validation / test by seed, standardizes features with statistics of
the training split only, and serves batches by indexing the tensors (one gather per
batch, no per-sample ``__getitem__`` and collate).
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch import Tensor

CLASSIFICATION = "classification"
REGRESSION = "regression"


class InMemoryBatches:
    """Iterable of ``(x, y)`` batches cut from tensors by indexing.

    With ``shuffle`` the order is a fresh permutation each epoch, drawn from a generator
    seeded once, so the sequence of epochs is reproducible. A trailing batch of a single
    sample is skipped when shuffling (batch norm cannot train on it).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        full, rest = divmod(n, b)
        return full + (1 if rest > 1 or (rest == 1 and not self.shuffle) else 0)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, b = len(self.x), self.batch_size
        if not self.shuffle:
            for start in range(0, n, b):
                yield self.x[start : start + b], self.y[start : start + b]
            return
        order = torch.randperm(n, generator=self.generator)
        for i in range(len(self)):
            index = order[i * b : (i + 1) * b]
            yield self.x[index], self.y[index]


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test index arrays covering ``range(n)``, stratified when given labels."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(n)
    holdout = val_fraction + test_fraction
    if holdout == 0:
        return indices, indices[:0], indices[:0]
    train, rest = train_test_split(
        indices, test_size=holdout, random_state=seed, stratify=stratify
    )
    if test_fraction == 0:
        return train, rest, indices[:0]
    if val_fraction == 0:
        return train, indices[:0], rest
    rest_labels = stratify[rest] if stratify is not None else None
    val, test = train_test_split(
        rest, test_size=test_fraction / holdout, random_state=seed, stratify=rest_labels
    )
    return train, val, test


class Standardizer:
    """``x -> (x - mean) / std`` with mean and std of the data it was fitted on.

    Constant features (std = 0) are centred and left unscaled.
    """

    def __init__(self, x: np.ndarray) -> None:
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


class ArrayDataModule(L.LightningDataModule):
    """Base for in-memory sets: subclasses implement :meth:`load_arrays`.

    After :meth:`setup`, ``task``, ``n_features`` and ``n_outputs`` describe the set for
    the model and the loss.
    """

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 4096,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        standardize: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to < 1")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize
        self.seed = seed
        self.tensors: dict[str, tuple[Tensor, Tensor]] = {}
        self.task = ""
        self.n_features = 0
        self.n_outputs = 0

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Return ``(features, targets, task)`` with task ``classification`` or ``regression``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.tensors:
            return
        x, y, task = self.load_arrays()
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if task == CLASSIFICATION:
            classes, y = np.unique(y, return_inverse=True)
            self.n_outputs = len(classes)
        else:
            y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            self.n_outputs = y.shape[1]
        stratify = y if task == CLASSIFICATION else None
        parts = split_indices(len(x), self.val_fraction, self.test_fraction, self.seed, stratify)
        scale = Standardizer(x[parts[0]]) if self.standardize else None
        for name, index in zip(("train", "val", "test"), parts):
            features = scale(x[index]) if scale else x[index]
            target_dtype = torch.long if task == CLASSIFICATION else torch.float32
            self.tensors[name] = (
                torch.as_tensor(features, dtype=torch.float32),
                torch.as_tensor(y[index], dtype=target_dtype),
            )
        self.task = task
        self.n_features = x.shape[1]

    def split_sizes(self) -> dict[str, int]:
        return {name: len(pair[0]) for name, pair in self.tensors.items()}

    def _batches(self, split: str, shuffle: bool) -> InMemoryBatches:
        x, y = self.tensors[split]
        size = self.batch_size if shuffle else self.eval_batch_size
        return InMemoryBatches(x, y, size, shuffle=shuffle, seed=self.seed)

    def train_dataloader(self) -> InMemoryBatches:
        return self._batches("train", shuffle=True)

    def val_dataloader(self) -> InMemoryBatches:
        return self._batches("val", shuffle=False)

    def test_dataloader(self) -> InMemoryBatches:
        return self._batches("test", shuffle=False)


SKLEARN_SETS = {
    "digits": ("load_digits", CLASSIFICATION),
    "breast_cancer": ("load_breast_cancer", CLASSIFICATION),
    "wine": ("load_wine", CLASSIFICATION),
    "iris": ("load_iris", CLASSIFICATION),
    "diabetes": ("load_diabetes", REGRESSION),
}


class SklearnDataModule(ArrayDataModule):
    """A data set embedded in scikit-learn (no download): one of ``SKLEARN_SETS``."""

    def __init__(self, name: str = "digits", **kwargs) -> None:
        if name not in SKLEARN_SETS:
            raise ValueError(f"unknown scikit-learn set {name!r}; allowed: {sorted(SKLEARN_SETS)}")
        super().__init__(**kwargs)
        self.name = name

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        import sklearn.datasets

        loader_name, task = SKLEARN_SETS[self.name]
        bunch = getattr(sklearn.datasets, loader_name)()
        return bunch.data, bunch.target, task
