"""A table from a CSV or Parquet file: one target column, numeric feature columns.

- Format by suffix: ``.parquet`` / ``.pq`` (pyarrow), ``.tsv`` (tab separated), anything
  else CSV.
- ``target``: the column to predict; ``features``: the columns to use (default: all
  others).
- ``task``: ``classification``, ``regression`` or ``auto``: a target that is not numeric
  (strings, booleans, categories), or that holds integers only with at most
  ``AUTO_MAX_CLASSES`` distinct values, is a classification target; otherwise
  regression. Class labels may be strings; they are encoded as indices in sorted order
  (``classes`` keeps the labels).
- Missing feature values are an error naming the columns unless ``impute`` is
  ``mean`` or ``median`` (the statistic of the training split fills them); a missing
  target is always an error.

Every problem with the file stops :meth:`setup` with one message: a missing file is a
:class:`~reglab.errors.MissingDataError` (a :class:`FileNotFoundError`) naming the path
looked at; an unknown column (listing the available ones), a non-numeric feature column,
missing values (naming the columns) or an unreadable file is a
:class:`~reglab.errors.DataError` (a :class:`ValueError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reglab import checks
from reglab.checks import existing_file
from reglab.data import CLASSIFICATION, REGRESSION, TASKS
from reglab.data.in_memory import ArrayDataModule
from reglab.errors import DataError

AUTO_MAX_CLASSES = 20
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path):
    """The file as a pandas DataFrame, or a clear error."""
    import pandas as pd

    path = existing_file("data.path", path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except ImportError as error:
        raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow ({error})") from error
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as error:
        raise DataError(f"data.path={str(path)!r} cannot be read as a table: {error}") from None


def infer_task(target) -> str:
    """``classification`` for non-numeric targets and few distinct integers, else
    ``regression`` (``target``: a pandas Series without missing values)."""
    from pandas.api import types

    if types.is_bool_dtype(target) or not types.is_numeric_dtype(target):
        return CLASSIFICATION
    values = target.to_numpy(dtype=np.float64)
    integral = np.all(values == np.round(values))
    return CLASSIFICATION if integral and len(np.unique(values)) <= AUTO_MAX_CLASSES else REGRESSION


class TableDataModule(ArrayDataModule):
    """A CSV or Parquet file held in memory; see the module docstring.

    Split at random by ``val_fraction`` / ``test_fraction`` (stratified for
    classification), standardized with the training split's statistics.
    """

    def __init__(
        self,
        path: str | None = None,
        target: str | None = None,
        features: Sequence[str] | None = None,
        task: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        checks.choice("data.task", task, ("auto", *TASKS))
        self.path = path
        self.target = target
        self.features = None if features is None else [str(f) for f in features]
        self.task_setting = task

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        from pandas.api import types

        if not self.path:
            raise DataError("data.path is not set: give the CSV or Parquet file, data.path=FILE")
        if not self.target:
            raise DataError("data.target is not set: name the column to predict, data.target=NAME")
        table = read_table(self.path)
        self.source = str(self.path)
        columns = [str(c) for c in table.columns]
        table.columns = columns
        available = f"available columns: {columns}"
        if self.target not in columns:
            raise DataError(f"data.target={self.target!r} is not a column of {self.path}; {available}")
        features = self.features if self.features is not None else [c for c in columns if c != self.target]
        unknown = [f for f in features if f not in columns]
        if unknown:
            raise DataError(f"data.features {unknown} are not columns of {self.path}; {available}")
        if self.target in features:
            raise DataError(f"data.target={self.target!r} is also listed in data.features")
        if not features:
            raise DataError(f"{self.path} has no feature columns besides the target {self.target!r}")
        if len(table) == 0:
            raise DataError(f"{self.path} has no rows")
        text = [f for f in features if not types.is_numeric_dtype(table[f])]
        if text:
            kinds = ", ".join(f"{f!r} ({table[f].dtype})" for f in text)
            raise DataError(
                f"feature column(s) {kinds} of {self.path} are not numeric: encode them as numbers "
                "or leave them out with data.features=[...]"
            )
        target = table[self.target]
        if target.isna().any():
            raise DataError(
                f"target column {self.target!r} of {self.path} has {int(target.isna().sum())} "
                "missing value(s): remove those rows (data.impute fills features only)"
            )
        task = infer_task(target) if self.task_setting == "auto" else self.task_setting
        numeric = types.is_numeric_dtype(target) and not types.is_bool_dtype(target)
        if task == REGRESSION and not numeric:
            raise DataError(
                f"data.task=regression needs a numeric target; column {self.target!r} is {target.dtype}"
            )
        if task == CLASSIFICATION and target.nunique() < 2:
            raise DataError(f"target column {self.target!r} of {self.path} holds a single class")
        self.feature_names = list(features)
        x = table[features].to_numpy(dtype=np.float64, na_value=np.nan)
        y = target.to_numpy() if types.is_numeric_dtype(target) else target.astype(str).to_numpy()
        return x, y, task
