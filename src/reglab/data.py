"""Data modules that hold whole data sets as in-memory tensors.

Every source produces one feature array and one target array; the base class
:class:`ArrayDataModule` splits them into train / validation / test, standardizes
features with statistics of the training split only, and serves batches by indexing the
tensors (one gather per batch, no per-sample ``__getitem__`` and collate).

Sources (each a small subclass; the ``conf/data/*.yaml`` option in brackets):

- :class:`SklearnDataModule` here: sets embedded in scikit-learn [``digits``,
  ``diabetes``, ``breast_cancer``, ``wine``];
- :mod:`reglab.synthetic`: linear designs of the lasso / elastic-net papers [``synthetic``];
- :mod:`reglab.mnist1d_data`: MNIST-1D, generated offline [``mnist1d``];
- :mod:`reglab.table_file`: a CSV or Parquet file [``csv``];
- :mod:`reglab.image_files`: MNIST, Fashion-MNIST and CIFAR-10 in torchvision's on-disk
  format [``mnist``, ``fashion_mnist``, ``cifar10``].

Sets without a fixed split are split at random by ``val_fraction`` / ``test_fraction``
(stratified for classification); sets that come with an official test split keep it
and carve validation from their training part (:class:`FixedSplitDataModule`).

Standardization: tabular features (``input_shape`` of one dimension) are standardized
one by one; signals and images (``input_shape = (C, ...)``, channels first) per channel,
so that every position keeps one shared scale, as a convolution expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor

from reglab.config import DataError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
IMPUTERS = ("mean", "median")


class InMemoryBatches:
    """Iterable of ``(x, y)`` batches cut from tensors by indexing.

    With ``shuffle`` the order is a fresh permutation each epoch, drawn from a generator
    seeded once, so the sequence of epochs is reproducible. A trailing batch of a single
    sample is skipped when shuffling (batch norm cannot train on it). ``repeat`` passes
    over the data make one epoch (each with its own permutation): more steps between
    validations for small sets.
    """

    def __init__(
        self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0, repeat: int = 1
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.repeat = int(repeat)
        self.generator = torch.Generator().manual_seed(seed)

    def _per_pass(self) -> int:
        n, b = len(self.x), self.batch_size
        full, rest = divmod(n, b)
        return full + (1 if rest > 1 or (rest == 1 and not self.shuffle) else 0)

    def __len__(self) -> int:
        return self.repeat * self._per_pass()

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, b = len(self.x), self.batch_size
        rank, world = _process_share()
        for _ in range(self.repeat):
            if not self.shuffle:
                for start in range(0, n, b):
                    end = min(start + b, n)
                    yield self.x[start + rank : end : world], self.y[start + rank : end : world]
                continue
            order = torch.randperm(n, generator=self.generator)
            for i in range(self._per_pass()):
                index = order[i * b : (i + 1) * b][rank::world]
                # index_select: tensor[index] is ~1000x slower for float rows on CPU (torch 2.13)
                yield self.x.index_select(0, index), self.y.index_select(0, index)


def _process_share() -> tuple[int, int]:
    """``(rank, world size)`` in a distributed run, ``(0, 1)`` otherwise.

    Every process draws the same permutation (same seed) and takes every world-th sample
    of each batch, so a batch of ``batch_size`` is split across processes and the
    averaged gradient is the one-process gradient of the whole batch.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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


class Standardizer:
    """``x -> (x - mean) / std`` with mean and std of the data it was fitted on.

    Per feature (column of ``x``), or with ``channels = C`` per channel: the columns are
    read as ``C`` consecutive blocks (a flattened ``(C, ...)`` sample) and each block
    shares one mean and std. Constant features (std = 0) are centred and left unscaled.
    Statistics are computed in float64; the result keeps the dtype of its input.
    """

    def __init__(self, x: np.ndarray, channels: int | None = None) -> None:
        self.channels = channels
        if channels is None:
            mean = x.mean(axis=0, dtype=np.float64)
            std = x.std(axis=0, dtype=np.float64)
        else:
            blocks = x.reshape(len(x), channels, x.shape[1] // channels)
            mean = np.array([blocks[:, c].mean(dtype=np.float64) for c in range(channels)])
            std = np.array([blocks[:, c].std(dtype=np.float64) for c in range(channels)])
        self.mean = mean
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.mean.astype(x.dtype), self.std.astype(x.dtype)
        if self.channels is None:
            return (x - mean) / std
        blocks = x.reshape(len(x), self.channels, x.shape[1] // self.channels)
        return ((blocks - mean[:, None]) / std[:, None]).reshape(x.shape)


class ArrayDataModule(L.LightningDataModule):
    """Base for in-memory sets: subclasses implement :meth:`load_arrays`.

    ``load_arrays`` returns ``(features, targets, task)``: features of shape
    ``(n, *input_shape)`` (numbers, NaN for a missing value), targets of shape ``(n,)``
    (class labels of any sortable type, or numbers) or ``(n, k)`` (regression). A
    subclass may also override :meth:`split` (which rows are train / val / test) and
    :meth:`noise_free_targets`.

    After :meth:`setup`:

    - ``tensors[split] = (x, y)`` for ``split`` in train / val / test: x float32 of shape
      ``(n, n_features)`` (flattened; models reshape with ``input_shape``), y int64
      class indices ``(n,)`` or float32 ``(n, k)``;
    - ``task``, ``n_features``, ``n_outputs``, ``input_shape`` describe the set for the
      model and the loss; ``classes`` lists the original labels of the class indices;
      ``feature_names`` names the columns when the source knows them;
    - ``clean_targets[split]``: the noise-free regression targets ``(n, k)`` in the units
      of ``y``, for sources that know them (simulations), else empty.

    ``batch_size`` / ``eval_batch_size`` of ``None`` mean the whole split in one batch
    (full-batch training); ``repeat`` passes over the training split make one training
    epoch (for tiny sets: more optimizer steps per validation and early-stopping check).
    ``impute`` (``mean`` / ``median``) fills missing feature values with the statistic of
    the training split; without it a missing value is an error naming the columns.
    """

    def __init__(
        self,
        batch_size: int | None = 64,
        eval_batch_size: int | None = 4096,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        standardize: bool = True,
        seed: int = 0,
        impute: str | None = None,
        repeat: int = 1,
    ) -> None:
        super().__init__()
        for key, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if size is not None and size < 1:
                raise ValueError(f"{key} must be >= 1 (or None for the whole split), got {size}")
        fractions_ok = 0 <= val_fraction < 1 and 0 <= test_fraction < 1
        if not (fractions_ok and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to < 1")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        if impute is not None and impute not in IMPUTERS:
            raise ValueError(f"impute must be one of {list(IMPUTERS)} or None, got {impute!r}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize
        self.seed = seed
        self.impute = impute
        self.repeat = repeat
        self.tensors: dict[str, tuple[Tensor, Tensor]] = {}
        self.clean_targets: dict[str, Tensor] = {}
        self.task = ""
        self.n_features = 0
        self.n_outputs = 0
        self.input_shape: tuple[int, ...] = ()
        self.classes: list = []
        self.feature_names: list[str] = []
        self.source = ""  # where the data comes from, for error messages

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Return ``(features, targets, task)`` with task ``classification`` or ``regression``."""
        raise NotImplementedError

    def split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of train / val / test; by default random by the fractions,
        stratified by the class ``labels`` (None for regression)."""
        return split_indices(n, self.val_fraction, self.test_fraction, self.seed, labels)

    def noise_free_targets(self) -> np.ndarray | None:
        """Regression targets without noise, aligned with the rows of ``load_arrays``
        (called after it); None when unknown."""
        return None

    def setup(self, stage: str | None = None) -> None:
        if self.tensors:
            return
        x, y, task = self.load_arrays()
        x = np.asarray(x)
        self.input_shape = tuple(x.shape[1:]) or (1,)
        dtype = np.float32 if x.dtype in (np.uint8, np.int8, np.float16, np.float32) else np.float64
        checked = np.issubdtype(x.dtype, np.floating)  # integer sources hold no NaN / inf
        x = x.astype(dtype, copy=False).reshape(len(x), -1)
        if task == CLASSIFICATION:
            classes, y = np.unique(np.asarray(y), return_inverse=True)
            y = y.reshape(-1)
            self.classes = classes.tolist()
            self.n_outputs = len(classes)
        else:
            y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            self.n_outputs = y.shape[1]
        missing = self._check_values(x) if checked else None
        try:
            parts = self.split(len(x), y if task == CLASSIFICATION else None)
        except DataError:
            raise
        except ValueError as error:  # too few samples for the requested parts
            raise DataError(
                f"{len(x)} samples{self._where()} cannot be split into train / val / test as "
                f"configured: {error}"
            ) from None
        if missing is not None:
            x = self._impute(x, parts[0], missing)
        channels = self.input_shape[0] if len(self.input_shape) >= 2 else None
        scale = Standardizer(x[parts[0]], channels) if self.standardize else None
        clean = self.noise_free_targets()
        target_dtype = torch.long if task == CLASSIFICATION else torch.float32
        for name, index in zip(("train", "val", "test"), parts, strict=True):
            features = scale(x[index]) if scale else x[index]
            self.tensors[name] = (
                torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32),
                torch.as_tensor(y[index], dtype=target_dtype),
            )
            if clean is not None:
                values = np.asarray(clean, dtype=np.float64).reshape(len(x), -1)[index]
                self.clean_targets[name] = torch.as_tensor(values, dtype=torch.float32)
        self.task = task
        self.n_features = x.shape[1]

    def _column_names(self, columns: np.ndarray) -> list[str]:
        index = np.flatnonzero(columns)
        if len(self.feature_names) == len(columns):
            return [self.feature_names[i] for i in index]
        return [f"column {i}" for i in index]

    def _where(self) -> str:
        return f" in {self.source}" if self.source else ""

    def _check_values(self, x: np.ndarray) -> np.ndarray | None:
        """The mask of columns with missing values (NaN) when ``impute`` may fill them;
        a :class:`DataError` naming the columns for infinite values, or for missing ones
        without ``impute``."""
        infinite = np.isinf(x).any(axis=0)
        if infinite.any():
            names = self._column_names(infinite)
            raise DataError(f"infinite values in column(s) {names}{self._where()}")
        missing = np.isnan(x).any(axis=0)
        if not missing.any():
            return None
        if self.impute is None:
            counts = np.isnan(x).sum(axis=0)[missing]
            shown = ", ".join(
                f"{n!r} ({c} missing)"
                for n, c in zip(self._column_names(missing), counts, strict=True)
            )
            raise DataError(
                f"missing values (NaN) in column(s) {shown}{self._where()}: remove them from the "
                "data, or set data.impute=mean or data.impute=median to fill them with the "
                "statistic of the training split"
            )
        return missing

    def _impute(self, x: np.ndarray, train: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """NaNs of the ``missing`` columns replaced by the training split's column mean /
        median (``impute``)."""
        columns = np.flatnonzero(missing)
        train_part = x[np.ix_(train, columns)]
        empty = np.isnan(train_part).all(axis=0)
        if empty.any():
            unfilled = [n for n, e in zip(self._column_names(missing), empty, strict=True) if e]
            raise DataError(
                f"column(s) {unfilled}{self._where()} have no values in the training split: "
                f"data.impute={self.impute} cannot fill them"
            )
        statistic = np.nanmean if self.impute == "mean" else np.nanmedian
        fill = statistic(train_part, axis=0).astype(x.dtype)
        x = x.copy()
        rows, cols = np.nonzero(np.isnan(x[:, columns]))
        x[rows, columns[cols]] = fill[cols]
        return x

    def split_sizes(self) -> dict[str, int]:
        return {name: len(pair[0]) for name, pair in self.tensors.items()}

    def _batches(self, split: str, shuffle: bool) -> InMemoryBatches:
        x, y = self.tensors[split]
        size = self.batch_size if shuffle else self.eval_batch_size
        size = max(1, len(x)) if size is None else size
        return InMemoryBatches(x, y, size, shuffle=shuffle, seed=self.seed)

    def train_dataloader(self) -> InMemoryBatches:
        batches = self._batches("train", shuffle=True)
        batches.repeat = self.repeat
        return batches

    def val_dataloader(self) -> InMemoryBatches:
        return self._batches("val", shuffle=False)

    def test_dataloader(self) -> InMemoryBatches:
        return self._batches("test", shuffle=False)


class FixedSplitDataModule(ArrayDataModule):
    """Base for sets that come with an official train / test split.

    Subclasses implement :meth:`load_parts` returning ``(x_train, y_train, x_test,
    y_test, task)``. Validation is carved from the official training part at random
    (stratified): ``n_val`` samples, or ``val_fraction`` of it when ``n_val`` is None.
    ``n_train`` / ``n_test`` (None: all) keep a random stratified subset of the rest of
    the training part / of the test part, for quick runs.
    """

    def __init__(
        self,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        val_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(val_fraction=val_fraction, test_fraction=0.0, **kwargs)
        for key, size in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if size is not None and size < (0 if key == "n_val" else 1):
                raise ValueError(f"{key} must be a positive count or None, got {size}")
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test
        self._n_official_train = 0

    def load_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        raise NotImplementedError

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        x_train, y_train, x_test, y_test, task = self.load_parts()
        self._n_official_train = len(x_train)
        return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), task

    def split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pool, test = np.arange(self._n_official_train), np.arange(self._n_official_train, n)
        val_size = self.n_val if self.n_val is not None else self.val_fraction
        if val_size == 0:
            train, val = pool, pool[:0]
        else:
            if isinstance(val_size, int) and val_size >= len(pool):
                raise DataError(
                    f"n_val={val_size} leaves no training samples: the training part has "
                    f"{len(pool)}"
                )
            train, val = _two_way(pool, val_size, self.seed, _at(labels, pool))
        train = _subset(train, self.n_train, self.seed, _at(labels, train))
        test = _subset(test, self.n_test, self.seed, _at(labels, test))
        return np.sort(train), np.sort(val), np.sort(test)


def _at(labels: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if labels is None else labels[index]


def _subset(
    index: np.ndarray, size: int | None, seed: int, labels: np.ndarray | None
) -> np.ndarray:
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
        self.feature_names = [str(f) for f in getattr(bunch, "feature_names", [])]
        self.source = f"scikit-learn's {self.name} set"
        return bunch.data, bunch.target, task
