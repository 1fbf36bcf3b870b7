"""MNIST-1D (Greydanus 2020): ten 1-D digit templates, padded, shifted, scaled, sheared
and blurred with correlated and i.i.d. noise into signals of length 40.

Generated offline with the ``mnist1d`` package's ``make_dataset`` and its published
arguments (5000 samples, seed 42, 80 % train -> 4000 train / 1000 test); its download
path (``get_dataset``) is never used. Samples have shape ``(1, 40)`` (one channel), so a
1-D convolution can read them; validation is carved from the 4000 training samples.
A linear model reaches about 32 % test accuracy, an MLP about 68 %, a small CNN > 90 %.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from reglab import checks
from reglab.data import CLASSIFICATION
from reglab.data.in_memory import FixedSplitDataModule


@lru_cache(maxsize=2)
def generate_mnist1d(
    n_samples: int = 5000, train_split: float = 0.8, seed: int = 42, shuffle_seq: bool = False
) -> dict[str, np.ndarray]:
    """``mnist1d.data.make_dataset`` with the published arguments but these four.

    The global ``random`` / ``numpy.random`` states, which ``make_dataset`` reseeds, are
    restored afterwards. Cached (the jobs of a sweep in one process generate once): do
    not modify the returned arrays.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("data=mnist1d needs the mnist1d package: pip install mnist1d") from error
    args = get_dataset_args()
    args.num_samples, args.train_split = int(n_samples), float(train_split)
    args.seed, args.shuffle_seq = int(seed), bool(shuffle_seq)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


class Mnist1dDataModule(FixedSplitDataModule):
    """MNIST-1D generated in memory; ``input_shape = (1, 40)``, 10 classes.

    ``n_samples``, ``train_split``, ``generation_seed`` and ``shuffle_seq`` are the
    generator's arguments (defaults: the published set); ``seed`` only chooses the
    validation samples and the batch order.
    """

    def __init__(
        self,
        n_samples: int = 5000,
        train_split: float = 0.8,
        generation_seed: int = 42,
        shuffle_seq: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples = checks.integer("data.n_samples", n_samples, low=20)
        self.train_split = checks.number("data.train_split", train_split, 0, 1, low_open=True, high_open=True)
        self.generation_seed = checks.integer("data.generation_seed", generation_seed)
        self.shuffle_seq = checks.flag("data.shuffle_seq", shuffle_seq)

    def load_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        data = generate_mnist1d(self.n_samples, self.train_split, self.generation_seed, self.shuffle_seq)
        self.source = "MNIST-1D"
        x_train, x_test = data["x"][:, None, :], data["x_test"][:, None, :]
        return x_train, data["y"], x_test, data["y_test"], CLASSIFICATION
