"""Data sources beyond digits: scikit-learn sets, synthetic designs, MNIST-1D, CSV /
Parquet files and torchvision-format image folders (written here in the exact on-disk
format). Every ``conf/data`` option trains two epochs through ``reglab.run``."""

from __future__ import annotations

import gzip
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli

import reglab
from reglab.data import CLASSIFICATION, REGRESSION
from reglab.data.batches import InMemoryBatches
from reglab.data.images import (
    ImageFilesDataModule,
    read_cifar_batch,
    read_idx,
    write_example_set,
    write_idx,
)
from reglab.data.mnist1d import Mnist1dDataModule
from reglab.data.sklearn_sets import SklearnDataModule
from reglab.data.splits import split_indices
from reglab.data.synthetic import DESIGNS, SyntheticDataModule, covariance
from reglab.data.tables import TableDataModule
from reglab.errors import DataError, MissingDataError

QUICK = ["logger=none", "trainer.max_epochs=2", "callbacks=none"]

# --------------------------------------------------------------------------- files on disk


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.integers(0, 5, n),
        }
    )
    frame["label"] = np.where(frame.a + 0.5 * frame.b > 0, "yes", "no")
    frame["price"] = 2 * frame.a - frame.b + 0.1 * rng.normal(size=n)
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- every option trains


def test_every_data_option_trains_two_epochs(tmp_path: Path, csv_file: Path):
    write_example_set("mnist", tmp_path / "img")  # 40 train / 20 test images
    write_example_set("fashion_mnist", tmp_path / "img", gz=True)
    write_example_set("cifar10", tmp_path / "img")
    image = [f"data.root={tmp_path / 'img'}", "data.n_val=10"]
    cases = {
        "digits": ([], "test/acc"),
        "diabetes": (["model=linear"], "test/r2"),
        "breast_cancer": ([], "test/acc"),
        "wine": ([], "test/acc"),
        "synthetic": (["model=linear"], "test/r2"),
        "mnist1d": (["model=cnn1d", "data.n_train=500"], "test/acc"),
        "csv": ([f"data.path={csv_file}", "data.target=label"], "test/acc"),
        "mnist": (["model=convnet", *image], "test/acc"),
        "fashion_mnist": (["model=convnet", *image, "batchnorm=true", "dropout=0.2"], "test/acc"),
        "cifar10": (["model=convnet", *image, "data.batch_size=null"], "test/acc"),
    }
    # where two epochs are enough to learn: well above chance (majority class: breast_cancer
    # 0.63, wine 0.40; 10 classes: 0.1) or better than predicting the mean (r2 > 0)
    learned = {"digits": 0.8, "breast_cancer": 0.8, "wine": 0.7, "mnist1d": 0.18, "synthetic": 0.0}
    options = {p.stem for p in (Path(reglab.__file__).parents[2] / "conf" / "data").glob("*.yaml")}
    assert options == set(cases)
    for option, (extra, metric) in cases.items():
        result = reglab.run([f"data={option}", *QUICK, *extra])
        assert result.metrics["fit/epochs"] == 2, option
        assert np.isfinite(result.metrics[metric]), option
        if option in learned:
            assert result.metrics[metric] > learned[option], (option, metric, result.metrics[metric])


def test_synthetic_classification_trains():
    result = reglab.run(["data=synthetic", "data.task=classification", "data.design=null", *QUICK])
    x, y = result.data.tensors["test"]
    assert result.data.n_outputs == 2 and set(y.unique().tolist()) == {0, 1}
    majority = max(y.float().mean().item(), 1 - y.float().mean().item())  # about 0.5
    # 5 informative features with coefficient 1 and noise sigma 1: learnable well above chance
    assert result.metrics["test/acc"] > majority + 0.15
    result.model.eval()
    with torch.no_grad():
        predicted = result.model(x).argmax(dim=1)
    assert (predicted == y).float().mean().item() == pytest.approx(result.metrics["test/acc"])


# --------------------------------------------------------------------------- shared options


def test_null_batch_size_means_full_batch():
    dm = SklearnDataModule("wine", batch_size=None, eval_batch_size=None, seed=0)
    dm.setup()
    ((x, y),) = list(dm.train_dataloader())
    assert len(x) == dm.split_sizes()["train"]
    assert len(list(dm.val_dataloader())) == 1


def test_repeat_makes_one_epoch_of_several_passes():
    x, y = torch.arange(9.0)[:, None], torch.arange(9)
    batches = InMemoryBatches(x, y, 4, shuffle=True, seed=0, repeat=3)
    parts = list(batches)
    assert len(parts) == len(batches) == 6  # 2 batches per pass (the single trailing one skipped)
    for k in range(3):
        seen = torch.cat([b[1] for b in parts[2 * k : 2 * k + 2]])
        assert len(set(seen.tolist())) == 8
    dm = SyntheticDataModule(design="tibshirani_1", repeat=5, seed=0)
    dm.setup()
    assert len(dm.train_dataloader()) == 5 and len(dm.val_dataloader()) == 1


def test_new_sklearn_sets():
    for name, n, features, classes in (("breast_cancer", 569, 30, 2), ("wine", 178, 13, 3)):
        dm = SklearnDataModule(name, seed=0)
        dm.setup()
        assert (dm.task, dm.n_features, dm.n_outputs) == (CLASSIFICATION, features, classes)
        assert dm.input_shape == (features,)
        assert sum(dm.split_sizes().values()) == n
        assert len(dm.feature_names) == features
        assert dm.clean_targets == {}


def test_stratification_falls_back_when_a_class_is_too_small():
    labels = np.array([0] * 30 + [1] * 30 + [2])  # class 2 has a single sample
    parts = split_indices(len(labels), 0.2, 0.2, seed=0, stratify=labels)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))


# --------------------------------------------------------------------------- synthetic


def test_synthetic_reproduces_toeplitz_correlation_and_noise_level():
    dm = SyntheticDataModule(design="tibshirani_1", n_train=40_000, standardize=False, seed=1)
    dm.setup()
    x, y = dm.tensors["train"]
    x = x.double().numpy()
    p = 8
    expected = 0.5 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    np.testing.assert_allclose(np.corrcoef(x.T), expected, atol=0.02)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=0.02)
    np.testing.assert_array_equal(dm.coef, [3, 1.5, 0, 0, 2, 0, 0, 0])
    clean = dm.clean_targets["train"].double().numpy()
    assert clean.shape == (40_000, 1)
    np.testing.assert_allclose(clean[:, 0], x @ dm.coef, rtol=1e-5, atol=1e-4)
    noise = y.double().numpy()[:, 0] - clean[:, 0]
    assert noise.std() == pytest.approx(3.0, rel=0.02)
    assert abs(noise.mean()) < 0.05
    # the signal's variance is coef' Sigma coef
    assert clean.var() == pytest.approx(dm.coef @ expected @ dm.coef, rel=0.03)


def test_design_sizes_and_clean_targets_in_every_split():
    dm = SyntheticDataModule(design="zou_hastie_3", seed=0)
    dm.setup()
    assert dm.split_sizes() == {"train": 100, "val": 100, "test": 400}
    assert dm.n_features == 40 and dm.task == REGRESSION and dm.n_outputs == 1
    for split, (_, y) in dm.tensors.items():
        assert dm.clean_targets[split].shape == y.shape
    np.testing.assert_array_equal(dm.coef, [0] * 10 + [2] * 10 + [0] * 10 + [2] * 10)


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_every_design_is_well_formed(design):
    dm = SyntheticDataModule(design=design, seed=0)
    assert len(dm.coef) == dm.p
    assert np.all(np.linalg.eigvalsh(dm.covariance) > 0)


def test_equal_and_grouped_correlations():
    dm = SyntheticDataModule(
        n_features=6,
        n_informative=2,
        n_train=30_000,
        n_val=0,
        n_test=0,
        correlation={"kind": "equal", "rho": 0.3},
        standardize=False,
        seed=2,
    )
    dm.setup()
    x = dm.tensors["train"][0].double().numpy()
    np.testing.assert_allclose(np.cov(x.T), covariance(6, {"kind": "equal", "rho": 0.3}), atol=0.03)
    np.testing.assert_array_equal(dm.coef, [1, 1, 0, 0, 0, 0])

    groups = {"kind": "groups", "n_groups": 3, "group_size": 5, "noise_sd": 0.1}
    dm = SyntheticDataModule(design="zou_hastie_4", n_train=20_000, standardize=False, seed=3)
    dm.setup()
    x = dm.tensors["train"][0].double().numpy()
    c = np.corrcoef(x.T)
    assert c[0, 4] == pytest.approx(1 / 1.01, abs=0.01)  # within a group
    assert abs(c[0, 5]) < 0.05 and abs(c[20, 30]) < 0.05  # across groups / independent
    np.testing.assert_allclose(np.cov(x.T), covariance(40, groups), atol=0.05)


def test_splits_have_independent_streams():
    a = SyntheticDataModule(design="tibshirani_1", n_test=50, seed=4)
    b = SyntheticDataModule(design="tibshirani_1", n_test=500, seed=4)
    c = SyntheticDataModule(design="tibshirani_1", n_test=50, seed=5)
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.tensors["train"][0], b.tensors["train"][0])
    assert not torch.equal(a.tensors["train"][0], c.tensors["train"][0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"correlation": {"kind": "toeplitz"}}, "rho is required"),
        ({"correlation": {"kind": "equal", "rho": -0.5}, "n_features": 10}, "positive definite"),
        ({"correlation": {"kind": "circle"}}, "none"),
        ({"correlation": {"kind": "groups", "n_groups": 5, "group_size": 5}}, "n_features >= 25"),
        ({"correlation": {"kind": "none", "rho": 0.2}}, "do not apply"),
    ],
)
def test_bad_correlation(kwargs, message):
    with pytest.raises(DataError, match=message):
        SyntheticDataModule(**kwargs)


def test_bad_synthetic_arguments():
    with pytest.raises(ValueError, match="design"):
        SyntheticDataModule(design="lasso_99")
    with pytest.raises(ValueError, match="not both"):
        SyntheticDataModule(coef=[1, 2], n_informative=1)
    with pytest.raises(ValueError, match="n_features"):
        SyntheticDataModule(coef=[1, 2], n_features=3)


# --------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_is_the_published_4000_1000_split_of_1_by_40_signals():
    dm = Mnist1dDataModule(val_fraction=0.0, seed=0)
    dm.setup()
    assert dm.split_sizes() == {"train": 4000, "val": 0, "test": 1000}
    assert dm.input_shape == (1, 40)
    assert (dm.n_features, dm.n_outputs, dm.task) == (40, 10, CLASSIFICATION)
    carved = Mnist1dDataModule(seed=0)  # default: 10 % of the training part is validation
    carved.setup()
    assert carved.split_sizes() == {"train": 3600, "val": 400, "test": 1000}
    torch.testing.assert_close(  # the test split does not depend on the carving
        carved.tensors["test"][1], dm.tensors["test"][1]
    )


def test_mnist1d_generation_leaves_global_random_state_alone():
    from reglab.data.mnist1d import generate_mnist1d

    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    generate_mnist1d(n_samples=100)
    assert np.random.rand() == expected


# --------------------------------------------------------------------------- CSV / Parquet


def test_csv_auto_task_and_string_labels(csv_file: Path):
    dm = TableDataModule(path=str(csv_file), target="label", seed=0)
    dm.setup()
    assert dm.task == CLASSIFICATION and dm.classes == ["no", "yes"]
    assert dm.feature_names == ["a", "b", "c", "price"]
    assert dm.n_features == 4 and dm.input_shape == (4,)
    dm = TableDataModule(path=str(csv_file), target="price", features=["a", "b"], seed=0)
    dm.setup()
    assert dm.task == REGRESSION and dm.n_features == 2
    dm = TableDataModule(path=str(csv_file), target="c", features=["a"], seed=0)
    dm.setup()
    assert dm.task == CLASSIFICATION and dm.n_outputs == 5  # few distinct integers


def test_parquet_and_tsv_read_like_csv(tmp_path: Path, csv_file: Path):
    frame = pd.read_csv(csv_file)
    frame.to_parquet(tmp_path / "table.parquet")
    frame.to_csv(tmp_path / "table.tsv", sep="\t", index=False)
    reference = TableDataModule(path=str(csv_file), target="price", features=["a", "b", "c"])
    reference.setup()
    for name in ("table.parquet", "table.tsv"):
        dm = TableDataModule(path=str(tmp_path / name), target="price", features=["a", "b", "c"])
        dm.setup()
        for split, (x, y) in dm.tensors.items():
            torch.testing.assert_close(x, reference.tensors[split][0])
            torch.testing.assert_close(y, reference.tensors[split][1])


def test_impute_fills_with_training_statistic(tmp_path: Path):
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.linspace(0, 1, 40), "y": np.arange(40.0)})
    frame.loc[[3, 17, 25], "a"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    for impute, statistic in (("mean", np.nanmean), ("median", np.nanmedian)):
        dm = TableDataModule(
            path=str(path), target="y", impute=impute, standardize=False, task="regression", seed=0
        )
        dm.setup()
        train_rows = split_indices(40, 0.15, 0.15, 0)[0]
        fill = statistic(frame.a.to_numpy()[train_rows])
        for split, index in zip(("train", "val", "test"), split_indices(40, 0.15, 0.15, 0), strict=True):
            a = dm.tensors[split][0][:, 0].double().numpy()
            expected = frame.a.to_numpy()[index]
            expected = np.where(np.isnan(expected), fill, expected)
            np.testing.assert_allclose(a, expected, rtol=1e-6)


def bad_file_cases(tmp_path: Path, csv_file: Path) -> dict[str, tuple[list[str], type, list[str]]]:
    """name -> (overrides, exception type, fragments its message must hold)."""
    text = pd.read_csv(csv_file)
    text["city"] = "paris"
    text_path = tmp_path / "text.csv"
    text.to_csv(text_path, index=False)
    gaps = pd.read_csv(csv_file)
    gaps.loc[[1, 2], "a"] = np.nan
    gaps.loc[[5], "b"] = np.nan
    gaps_path = tmp_path / "gaps.csv"
    gaps.to_csv(gaps_path, index=False)
    missing = tmp_path / "nowhere" / "missing.csv"
    return {
        "missing path": (
            [f"data.path={missing}", "data.target=label"],
            MissingDataError,
            [str(missing), "does not exist"],
        ),
        "unknown target": (
            [f"data.path={csv_file}", "data.target=lable"],
            DataError,
            ["'lable'", "available columns", "'label'", "'price'"],
        ),
        "unknown feature": (
            [f"data.path={csv_file}", "data.target=label", "data.features=[a,z]"],
            DataError,
            ["['z']", "available columns", "'price'"],
        ),
        "non-numeric feature": (
            [f"data.path={text_path}", "data.target=label"],
            DataError,
            ["'city'", "not numeric"],
        ),
        "missing values": (
            [f"data.path={gaps_path}", "data.target=label"],
            DataError,
            ["'a' (2 missing)", "'b' (1 missing)", "data.impute=mean"],
        ),
    }


def test_bad_files_fail_with_one_clear_message(tmp_path: Path, csv_file: Path):
    for name, (overrides, error, fragments) in bad_file_cases(tmp_path, csv_file).items():
        with pytest.raises(error) as info:
            reglab.run(["data=csv", *overrides, *QUICK])
        for fragment in fragments:
            assert fragment in str(info.value), (name, str(info.value))


@pytest.mark.slow
def test_cli_trains_on_a_csv_and_rejects_a_missing_file(tmp_path: Path, csv_file: Path):
    common = ["data=csv", "logger=none", "trainer.max_epochs=2"]
    done = run_cli([*common, f"data.path={csv_file}", "data.target=label"], tmp_path / "good")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test/acc" in done.stdout + done.stderr
    overrides, _, fragments = bad_file_cases(tmp_path, csv_file)["missing path"]
    failed = run_cli([*common, *overrides], tmp_path / "bad")
    assert failed.returncode != 0
    for fragment in fragments:
        assert fragment in failed.stderr, failed.stderr[-3000:]
    assert not list((tmp_path / "bad").glob("**/*.ckpt"))


# --------------------------------------------------------------------------- torchvision format


def test_idx_round_trip_plain_and_gzip(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(read_idx(tmp_path / name), images)
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (3).to_bytes(4, "big")
    with gzip.open(tmp_path / "x-idx3-ubyte.gz", "rb") as handle:
        assert handle.read() == raw
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_files_are_in_the_torchvision_layout(tmp_path: Path):
    write_example_set("mnist", tmp_path)
    write_example_set("fashion_mnist", tmp_path, gz=True)
    write_example_set("cifar10", tmp_path)
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == sorted(
        [
            *(
                f"MNIST/raw/{n}"
                for n in (
                    "train-images-idx3-ubyte",
                    "train-labels-idx1-ubyte",
                    "t10k-images-idx3-ubyte",
                    "t10k-labels-idx1-ubyte",
                )
            ),
            *(
                f"FashionMNIST/raw/{n}-ubyte.gz"
                for n in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
            ),
            *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
            "cifar-10-batches-py/test_batch",
        ]
    )
    labels = read_idx(tmp_path / "MNIST/raw/train-labels-idx1-ubyte")
    assert labels.dtype == np.uint8 and labels.shape == (40,)
    with open(tmp_path / "cifar-10-batches-py/data_batch_1", "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")  # as torchvision reads it
    assert entry["data"].shape == (8, 3072) and entry["data"].dtype == np.uint8
    assert isinstance(entry["labels"], list) and len(entry["labels"]) == 8


@pytest.mark.parametrize("name,gz", [("mnist", False), ("fashion_mnist", True)])
def test_mnist_like_sets_read_exactly(tmp_path: Path, name, gz):
    written = write_example_set(name, tmp_path, gz=gz)
    dm = ImageFilesDataModule(name=name, root=str(tmp_path), n_val=10, standardize=False, seed=0)
    dm.setup()
    assert dm.input_shape == (1, 28, 28) and dm.n_features == 784 and dm.n_outputs == 10
    assert dm.split_sizes() == {"train": 30, "val": 10, "test": 20}
    x_test, y_test = dm.tensors["test"]  # the official test split, in file order
    images, labels = written["test"]
    np.testing.assert_allclose(x_test.numpy() * 255, images.reshape(20, -1), atol=1e-4)
    np.testing.assert_array_equal(y_test.numpy(), labels)
    train_images = written["train"][0].reshape(40, -1)
    seen = np.concatenate([dm.tensors[s][0].numpy() for s in ("train", "val")]) * 255
    assert sorted(map(tuple, np.rint(seen).astype(int))) == sorted(map(tuple, train_images))


def test_cifar10_reads_channel_major_images(tmp_path: Path):
    written = write_example_set("cifar10", tmp_path)
    images, labels = read_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    expected_images, expected_labels = written["test"]
    assert images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(images, expected_images)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as handle:
        rows = pickle.load(handle)["data"]
    np.testing.assert_array_equal(images[:, 0].reshape(20, -1), rows[:, :1024])  # red plane first
    np.testing.assert_array_equal(labels, expected_labels)
    dm = ImageFilesDataModule(name="cifar10", root=str(tmp_path), val_fraction=0.25, seed=0)
    dm.setup()
    assert dm.input_shape == (3, 32, 32)
    assert dm.split_sizes() == {"train": 30, "val": 10, "test": 20}
    x = dm.tensors["train"][0].double().numpy().reshape(30, 3, -1)
    np.testing.assert_allclose(x.mean(axis=(0, 2)), 0, atol=1e-5)  # per-channel standardized
    np.testing.assert_allclose(x.std(axis=(0, 2)), 1, atol=1e-4)


def test_subsets_for_quick_runs(tmp_path: Path):
    write_example_set("mnist", tmp_path, n_train=60, n_test=30)
    dm = ImageFilesDataModule(root=str(tmp_path), n_val=10, n_train=20, n_test=10, seed=0)
    dm.setup()
    assert dm.split_sizes() == {"train": 20, "val": 10, "test": 10}


def test_missing_image_set_says_where_and_how(tmp_path: Path):
    with pytest.raises(MissingDataError) as info:
        ImageFilesDataModule(name="fashion_mnist", root=str(tmp_path)).setup()
    message = str(info.value)
    assert str(tmp_path) in message and "FashionMNIST/raw/train-images-idx3-ubyte" in message
    assert "FashionMNIST(" in message and "download=True" in message
    assert "data.download=true" in message


@pytest.mark.skipif("torchvision" in sys.modules, reason="torchvision importable")
def test_download_without_torchvision_is_a_clear_error(tmp_path: Path):
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("torchvision is importable here")
    with pytest.raises(ImportError, match="torchvision"):
        ImageFilesDataModule(name="cifar10", root=str(tmp_path), download=True).setup()
