"""Data sources, each a small data module holding its whole set as in-memory tensors.

- :mod:`reglab.data.in_memory`: the shared base (split, standardize, impute, batches);
- :mod:`reglab.data.sklearn_sets`: sets embedded in scikit-learn [``digits``, ``diabetes``,
  ``breast_cancer``, ``wine``];
- :mod:`reglab.data.synthetic`: linear designs of the lasso / elastic-net papers [``synthetic``];
- :mod:`reglab.data.mnist1d`: MNIST-1D, generated offline [``mnist1d``];
- :mod:`reglab.data.tables`: a CSV or Parquet file [``csv``];
- :mod:`reglab.data.images`: MNIST, Fashion-MNIST and CIFAR-10 in torchvision's on-disk
  format [``mnist``, ``fashion_mnist``, ``cifar10``].

This module itself imports nothing heavy: the task names live here.
"""

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
