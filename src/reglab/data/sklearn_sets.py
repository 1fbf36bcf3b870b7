"""Data sets embedded in scikit-learn (no download) [``data=digits``, ``diabetes``,
``breast_cancer``, ``wine``]."""

from __future__ import annotations

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
        import sklearn.datasets

        loader_name, task = SKLEARN_SETS[self.name]
        bunch = getattr(sklearn.datasets, loader_name)()
        self.feature_names = [str(f) for f in getattr(bunch, "feature_names", [])]
        self.source = f"scikit-learn's {self.name} set"
        return bunch.data, bunch.target, task
