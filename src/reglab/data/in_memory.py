"""The shared in-memory data module: whole data sets held as tensors.

Every source produces one feature array and one target array; the base class
:class:`ArrayDataModule` splits them into train / validation / test, standardizes
features with statistics of the training split only, and serves batches by indexing the
tensors (one gather per batch, no per-sample ``__getitem__`` and collate).

Each source (:mod:`reglab.data`) is a small subclass implementing :meth:`load_arrays`.

Sets without a fixed split are split at random by ``val_fraction`` / ``test_fraction``
(stratified for classification); sets that come with an official test split keep it
and carve validation from their training part (:class:`FixedSplitDataModule`).

Standardization: tabular features (``input_shape`` of one dimension) are standardized
one by one; signals and images (``input_shape = (C, ...)``, channels first) per channel,
so that every position keeps one shared scale, as a convolution expects.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from reglab import checks
from reglab.data import CLASSIFICATION
from reglab.data.batches import InMemoryBatches
from reglab.data.splits import _at, _subset, _two_way, split_indices
from reglab.errors import ConfigError, DataError

IMPUTERS = ("mean", "median")


def resample(index: np.ndarray, seed: int) -> np.ndarray:
    """A bootstrap resample of ``index``: ``len(index)`` entries drawn uniformly with
    replacement by ``numpy.random.default_rng(seed)``, sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(index[rng.integers(0, len(index), size=len(index))])


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


class ArrayDataModule:
    """Base for in-memory sets: subclasses implement :meth:`load_arrays`.

    A plain class, not a ``LightningDataModule``: the pipeline hands its loaders to the
    Trainer, so a data module is built and checked before Lightning is imported.

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

    Replicated training sets (the bias-variance study, :mod:`reglab.studies`): ``split_seed``
    (None: ``seed``) is the seed of the train / val / test split, so that runs of different
    ``seed`` share their held-out points; ``bootstrap`` replaces the training split by a
    bootstrap resample of it (:func:`resample` with ``seed``: as many rows, drawn with
    replacement), whose statistics then standardize the features (impute, scale the targets).
    Validation and test rows are untouched; ``seed`` still orders the batches.

    ``standardize_target`` (regression): ``target_scale = (mean, std)`` of the training
    targets, per output. The targets in ``tensors`` stay in their own units; the pipeline
    wraps the model in :class:`~reglab.models.TargetScale` (``output = mean + std * net(x)``)
    and the loss divides by ``std``, so the network fits standardized targets (any
    optimizer's default step suits them) while predictions and metrics keep the data's units.
    """

    #: How a seed replicates the data, for the report's intervals: ``resplit`` (a seed re-splits
    #: one fixed set of samples, so training sets of different seeds overlap and the test points
    #: are shared or overlap: seeds are not independent samples) or ``fresh`` (a seed draws new
    #: samples from a known population: independent).
    replication = "resplit"

    def __init__(
        self,
        batch_size: int | None = 64,
        eval_batch_size: int | None = 4096,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        standardize: bool = True,
        standardize_target: bool = True,
        seed: int = 0,
        impute: str | None = None,
        repeat: int = 1,
        split_seed: int | None = None,
        bootstrap: bool = False,
    ) -> None:
        self.batch_size = checks.optional_integer("data.batch_size", batch_size, 1, "the whole split")
        self.eval_batch_size = checks.optional_integer(
            "data.eval_batch_size", eval_batch_size, 1, "the whole split"
        )
        self.val_fraction = checks.number("data.val_fraction", val_fraction, 0, 1, high_open=True)
        self.test_fraction = checks.number("data.test_fraction", test_fraction, 0, 1, high_open=True)
        if val_fraction + test_fraction >= 1:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} is not "
                "allowed: must be < 1"
            )
        self.standardize = checks.flag("data.standardize", standardize)
        self.standardize_target = checks.flag("data.standardize_target", standardize_target)
        self.seed = checks.integer("data.seed", seed)
        self.split_seed = self.seed if split_seed is None else checks.integer("data.split_seed", split_seed)
        self.bootstrap = checks.flag("data.bootstrap", bootstrap)
        self.impute = None if impute is None else checks.choice("data.impute", impute, IMPUTERS)
        self.repeat = checks.integer("data.repeat", repeat, low=1)
        self.tensors: dict[str, tuple[Tensor, Tensor]] = {}
        self.clean_targets: dict[str, Tensor] = {}
        self.task = ""
        self.n_features = 0
        self.n_outputs = 0
        self.input_shape: tuple[int, ...] = ()
        self.classes: list = []
        self.feature_names: list[str] = []
        self.target_scale: tuple[Tensor, Tensor] | None = None
        self.feature_scale: Standardizer | None = None  # the training split's, when standardized
        self.source = ""  # where the data comes from, for error messages

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Return ``(features, targets, task)`` with task ``classification`` or ``regression``."""
        raise NotImplementedError

    def split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of train / val / test; by default random by the fractions,
        stratified by the class ``labels`` (None for regression)."""
        return split_indices(n, self.val_fraction, self.test_fraction, self.split_seed, labels)

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
        if self.bootstrap:
            parts = (resample(parts[0], self.seed), *parts[1:])
        if missing is not None:
            x = self._impute(x, parts[0], missing)
        channels = self.input_shape[0] if len(self.input_shape) >= 2 else None
        scale = Standardizer(x[parts[0]], channels) if self.standardize else None
        self.feature_scale = scale
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
        if task != CLASSIFICATION and self.standardize_target:
            train_y = y[parts[0]]
            std = train_y.std(axis=0)
            self.target_scale = (
                torch.as_tensor(train_y.mean(axis=0), dtype=torch.float32),
                torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32),
            )

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
                f"{n!r} ({c} missing)" for n, c in zip(self._column_names(missing), counts, strict=True)
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
        self.n_train = checks.optional_integer("data.n_train", n_train, 1, "all")
        self.n_val = checks.optional_integer("data.n_val", n_val, 0, "val_fraction of the training part")
        self.n_test = checks.optional_integer("data.n_test", n_test, 1, "all")
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
                    f"n_val={val_size} leaves no training samples: the training part has {len(pool)}"
                )
            train, val = _two_way(pool, val_size, self.split_seed, _at(labels, pool))
        train = _subset(train, self.n_train, self.split_seed, _at(labels, train))
        test = _subset(test, self.n_test, self.split_seed, _at(labels, test))
        return np.sort(train), np.sort(val), np.sort(test)
