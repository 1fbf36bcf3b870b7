"""MNIST, Fashion-MNIST and CIFAR-10 read from torchvision's on-disk format with numpy.

Files looked for under ``root`` (what ``torchvision.datasets.<Set>(root, download=True)``
leaves there):

- MNIST: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or the same
  names with ``.gz``); Fashion-MNIST the same under ``<root>/FashionMNIST/raw/``;
- CIFAR-10: ``<root>/cifar-10-batches-py/data_batch_1`` ... ``data_batch_5`` and
  ``test_batch`` (pickled dicts with ``data``: uint8 ``(n, 3072)`` and ``labels``).

Nothing is downloaded unless ``download=True``, which asks torchvision (when installed)
to fetch the set into ``root`` first. Images keep their shape ``(C, H, W)``; the
official test split is the test split, validation is carved from the training images.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from reglab import checks
from reglab.data import CLASSIFICATION
from reglab.data.in_memory import FixedSplitDataModule
from reglab.errors import DataError, MissingDataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an IDX file (the MNIST format), gzip-compressed or not.

    Layout: two zero bytes, a dtype code, the number of dimensions ``d``, ``d``
    big-endian uint32 sizes, then the values in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataError(
            f"{path}: header says shape {shape} ({expected} bytes), file holds {len(data) - offset}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file; gzip-compressed when ``path`` ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 3, 32, 32)`` uint8 and labels ``(n,)`` from one CIFAR-10 pickle."""
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DataError(f"{path} is not a CIFAR batch pickle: {error}") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path} is not a CIFAR batch (a {type(entry).__name__}, not a dict)")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    labels = entry.get("labels", entry.get("fine_labels"))
    if "data" not in entry or labels is None:
        raise DataError(f"{path} is not a CIFAR batch (keys: {sorted(entry)})")
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(labels, dtype=np.int64)


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
# name -> (torchvision class, folder under root)
SETS = {
    "mnist": ("MNIST", "MNIST/raw"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


def expected_files(name: str, root: str | Path) -> list[Path]:
    """The files a set is read from (for MNIST-like sets the uncompressed names; a
    ``.gz`` next to a missing one is used instead)."""
    folder = Path(root).expanduser() / SETS[name][1]
    names = (*CIFAR_TRAIN, "test_batch") if name == "cifar10" else MNIST_FILES
    return [folder / n for n in names]


def _present(path: Path) -> Path | None:
    if path.is_file():
        return path
    packed = path.with_name(path.name + ".gz")
    return packed if path.suffix != ".gz" and packed.is_file() else None


def _missing_message(name: str, root: Path, missing: list[Path]) -> str:
    cls = SETS[name][0]
    return (
        f"data={name}: {len(missing)} file(s) not found under {root.resolve()}: "
        f"{[str(m.relative_to(root)) for m in missing]} (MNIST-style files may also end in .gz). "
        f'Get the set with torchvision: python -c "from torchvision.datasets import {cls}; '
        f"{cls}('{root}', train=True, download=True); "
        f"{cls}('{root}', train=False, download=True)\", "
        f"or rerun with data.download=true (needs torchvision), or point data.root at the "
        "folder that holds it"
    )


def download(name: str, root: str | Path) -> None:
    """Let torchvision fetch ``name`` into ``root`` (train and test)."""
    try:
        import torchvision.datasets
    except Exception as error:  # not installed, or a build that does not match torch
        raise ImportError(
            f"data.download=true uses torchvision to fetch {name}, but it cannot be imported "
            f"({error}); install a torchvision matching your torch, or download the files "
            f"yourself into {Path(root).resolve()} (layout: reglab.data.images docstring)"
        ) from error
    cls = getattr(torchvision.datasets, SETS[name][0])
    for train in (True, False):
        cls(str(root), train=train, download=True)


def load_image_set(name: str, root: str | Path) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` with images ``(n, C, H, W)`` uint8."""
    root = Path(root).expanduser()
    files = expected_files(name, root)
    found = [_present(f) for f in files]
    missing = [f for f, p in zip(files, found, strict=True) if p is None]
    if missing:
        raise MissingDataError(_missing_message(name, root, missing))
    if name == "cifar10":
        train = [read_cifar_batch(p) for p in found[:5]]
        x_test, y_test = read_cifar_batch(found[5])
        x_train = np.concatenate([x for x, _ in train])
        y_train = np.concatenate([y for _, y in train])
        return x_train, y_train, x_test, y_test
    x_train, y_train, x_test, y_test = (read_idx(p) for p in found)
    for images, labels, path in ((x_train, y_train, found[0]), (x_test, y_test, found[2])):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{path}: images {images.shape} and labels {labels.shape} do not match")
    return x_train[:, None], y_train.astype(np.int64), x_test[:, None], y_test.astype(np.int64)


class ImageFilesDataModule(FixedSplitDataModule):
    """``mnist``, ``fashion_mnist`` or ``cifar10`` from ``root``; ``input_shape = (C, H, W)``.

    Pixels are scaled to [0, 1]; ``standardize`` then standardizes each channel with the
    training split's mean and std. ``n_train`` / ``n_val`` (or ``val_fraction``) /
    ``n_test`` choose the split sizes (see :class:`~reglab.data.FixedSplitDataModule`).
    """

    def __init__(self, name: str = "mnist", root: str = "data", download: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name = checks.choice("data.name", name, sorted(SETS))
        self.root = root
        self.download = checks.flag("data.download", download)

    def load_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        if self.download:
            files = expected_files(self.name, self.root)
            if any(_present(f) is None for f in files):
                download(self.name, self.root)
        x_train, y_train, x_test, y_test = load_image_set(self.name, self.root)
        self.source = f"{self.name} under {Path(self.root).expanduser().resolve()}"
        scale = np.float32(1 / 255)
        return x_train * scale, y_train, x_test * scale, y_test, CLASSIFICATION


def write_example_set(
    name: str, root: str | Path, n_train: int = 40, n_test: int = 20, seed: int = 0, gz: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write random images and labels (class ``i % 10`` for image ``i``) in the exact
    on-disk format of ``name`` under ``root``: tests and smoke runs without the real set.

    ``gz`` compresses MNIST-style files. Returns ``{"train": (images, labels), "test":
    ...}`` with images ``(n, C, H, W)`` uint8 as written.
    """
    rng = np.random.default_rng(seed)
    shape = (3, 32, 32) if name == "cifar10" else (1, 28, 28)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        written[split] = (images, np.arange(n, dtype=np.int64) % 10)
    folder = Path(root).expanduser() / SETS[name][1]
    folder.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        parts = np.array_split(np.arange(n_train), len(CIFAR_TRAIN))
        batches = [(CIFAR_TRAIN[i], "train", part) for i, part in enumerate(parts)]
        for file, split, index in [*batches, ("test_batch", "test", np.arange(n_test))]:
            images, labels = written[split]
            entry = {
                "batch_label": file,
                "labels": labels[index].tolist(),
                "data": images[index].reshape(len(index), -1),
            }
            with open(folder / file, "wb") as handle:
                pickle.dump(entry, handle, protocol=2)
        return written
    suffix = ".gz" if gz else ""
    for (images_file, labels_file), split in ((MNIST_FILES[:2], "train"), (MNIST_FILES[2:], "test")):
        images, labels = written[split]
        write_idx(folder / f"{images_file}{suffix}", images[:, 0])
        write_idx(folder / f"{labels_file}{suffix}", labels)
    return written
