"""Data sets embedded in scikit-learn (no download) [``data=digits``, ``diabetes``,
``breast_cancer``, ``wine``]."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from reglab import checks
from reglab.data import CLASSIFICATION, REGRESSION
from reglab.data.in_memory import ArrayDataModule

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
        super().__init__(**kwargs)
        self.name = checks.choice("data.name", name, sorted(SKLEARN_SETS))

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        features, targets, names = load_sklearn_set(self.name)
        self.feature_names = list(names)
        self.source = f"scikit-learn's {self.name} set"
        return features, targets, SKLEARN_SETS[self.name][1]


@lru_cache(maxsize=len(SKLEARN_SETS))
def load_sklearn_set(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(features, targets, feature names)`` of scikit-learn's set ``name``. Cached: the jobs
    of a sweep in one process read the file once (digits: ~18 ms a read); the arrays are
    read-only."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN_SETS[name][0])()
    for array in (bunch.data, bunch.target):
        array.flags.writeable = False
    return bunch.data, bunch.target, tuple(str(f) for f in getattr(bunch, "feature_names", []))
