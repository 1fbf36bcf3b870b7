"""Unit tests for reglab.data: in-memory batching, splits, scikit-learn data modules."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.datasets
import torch

from reglab.data import CLASSIFICATION, REGRESSION
from reglab.data.batches import InMemoryBatches
from reglab.data.sklearn_sets import SKLEARN_SETS, SklearnDataModule
from reglab.data.splits import split_indices


def indexed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x[i] = (i, -i) and y[i] = i, so every batch reveals which samples it holds."""
    idx = torch.arange(n)
    return torch.stack([idx, -idx], dim=1).float(), idx


def epoch_indices(batches: InMemoryBatches) -> list[torch.Tensor]:
    out = []
    for x, y in batches:
        assert torch.equal(x[:, 0].long(), y)  # features and targets stay aligned
        assert torch.equal(x[:, 1].long(), -y)
        out.append(y.clone())
    return out


# --------------------------------------------------------------------------- InMemoryBatches


@pytest.mark.parametrize(
    "n,batch,shuffle,expected",
    [
        (128, 64, True, 2),
        (129, 64, True, 2),  # trailing single sample skipped when shuffling
        (130, 64, True, 3),
        (129, 64, False, 3),  # ... but kept in order without shuffling
        (130, 64, False, 3),
        (1, 64, False, 1),
        (5, 1, True, 5),
        (63, 64, True, 1),
    ],
)
def test_len(n, batch, shuffle, expected):
    x, y = indexed(n)
    batches = InMemoryBatches(x, y, batch, shuffle=shuffle)
    assert len(batches) == expected
    assert len(list(batches)) == expected


@pytest.mark.parametrize("n", [128, 130, 200])
def test_shuffled_epoch_covers_every_index_once(n):
    x, y = indexed(n)
    batches = InMemoryBatches(x, y, 64, shuffle=True, seed=5)
    for _ in range(3):
        parts = epoch_indices(batches)
        assert [len(p) for p in parts][:-1] == [64] * (len(parts) - 1)
        seen = torch.cat(parts)
        assert len(seen) == n
        assert torch.equal(seen.sort().values, torch.arange(n))


def test_shuffled_epoch_skips_exactly_one_trailing_sample():
    n = 129
    x, y = indexed(n)
    batches = InMemoryBatches(x, y, 64, shuffle=True, seed=5)
    missing = set()
    for _ in range(4):
        parts = epoch_indices(batches)
        assert [len(p) for p in parts] == [64, 64]
        seen = torch.cat(parts)
        assert len(set(seen.tolist())) == 128  # no duplicates
        (left_out,) = set(range(n)) - set(seen.tolist())
        missing.add(left_out)
    assert len(missing) > 1  # a different sample is left out in different epochs


def test_fresh_permutation_each_epoch():
    x, y = indexed(100)
    batches = InMemoryBatches(x, y, 32, shuffle=True, seed=0)
    epochs = [torch.cat(epoch_indices(batches)) for _ in range(3)]
    assert not torch.equal(epochs[0], epochs[1])
    assert not torch.equal(epochs[1], epochs[2])
    assert not torch.equal(epochs[0], torch.arange(100))


def test_same_seed_same_sequence_of_epochs():
    x, y = indexed(100)
    a = InMemoryBatches(x, y, 32, shuffle=True, seed=7)
    b = InMemoryBatches(x, y, 32, shuffle=True, seed=7)
    c = InMemoryBatches(x, y, 32, shuffle=True, seed=8)
    for _ in range(3):
        ea, eb, ec = (torch.cat(epoch_indices(it)) for it in (a, b, c))
        assert torch.equal(ea, eb)
        assert not torch.equal(ea, ec)


def test_no_shuffle_keeps_order():
    x, y = indexed(130)
    batches = InMemoryBatches(x, y, 64, shuffle=False, seed=3)
    for _ in range(2):
        parts = epoch_indices(batches)
        assert [len(p) for p in parts] == [64, 64, 2]
        assert torch.equal(torch.cat(parts), torch.arange(130))


def test_no_shuffle_keeps_trailing_single_sample():
    x, y = indexed(129)
    parts = epoch_indices(InMemoryBatches(x, y, 64, shuffle=False))
    assert [len(p) for p in parts] == [64, 64, 1]
    assert torch.equal(torch.cat(parts), torch.arange(129))


# --------------------------------------------------------------------------- split_indices


def assert_partition(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert len(np.unique(joined)) == n
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    for a in range(len(parts)):
        for b in range(a + 1, len(parts)):
            assert not set(parts[a]) & set(parts[b])


@pytest.mark.parametrize("val,test", [(0.15, 0.15), (0.2, 0.1), (0.3, 0.0), (0.0, 0.25), (0.0, 0.0)])
def test_split_indices_disjoint_and_covering(val, test):
    n = 200
    train, val_idx, test_idx = split_indices(n, val, test, seed=0)
    assert_partition((train, val_idx, test_idx), n)
    assert len(val_idx) == pytest.approx(val * n, abs=1)
    assert len(test_idx) == pytest.approx(test * n, abs=1)
    if val == 0:
        assert len(val_idx) == 0
    if test == 0:
        assert len(test_idx) == 0


def test_split_indices_reproducible_and_seed_dependent():
    a = split_indices(300, 0.2, 0.2, seed=4)
    b = split_indices(300, 0.2, 0.2, seed=4)
    c = split_indices(300, 0.2, 0.2, seed=5)
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(np.sort(a[1]), np.sort(c[1]))


def test_split_indices_stratified():
    # unbalanced labels: 60% class 0, 30% class 1, 10% class 2
    labels = np.repeat([0, 1, 2], [240, 120, 40])
    np.random.default_rng(0).shuffle(labels)
    n = len(labels)
    parts = split_indices(n, 0.25, 0.25, seed=1, stratify=labels)
    assert_partition(parts, n)
    for part, fraction in zip(parts, (0.5, 0.25, 0.25), strict=True):
        counts = np.bincount(labels[part], minlength=3)
        expected = fraction * np.array([240, 120, 40])
        assert np.all(np.abs(counts - expected) <= 1), (counts, expected)


# --------------------------------------------------------------------------- SklearnDataModule


@pytest.fixture(scope="module")
def digits() -> SklearnDataModule:
    dm = SklearnDataModule("digits", seed=3)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def raw_digits():
    bunch = sklearn.datasets.load_digits()
    return bunch.data.astype(np.float64), bunch.target


def test_digits_description(digits):
    assert digits.task == CLASSIFICATION
    assert digits.n_features == 64
    assert digits.n_outputs == 10
    sizes = digits.split_sizes()
    assert set(sizes) == {"train", "val", "test"}
    assert sum(sizes.values()) == 1797
    assert sizes["val"] == pytest.approx(0.15 * 1797, abs=2)
    assert sizes["test"] == pytest.approx(0.15 * 1797, abs=2)


def test_digits_tensors(digits):
    for name, (x, y) in digits.tensors.items():
        assert x.dtype == torch.float32 and y.dtype == torch.long, name
        assert x.shape == (len(y), 64)
        assert y.ndim == 1
        assert int(y.min()) >= 0 and int(y.max()) <= 9
    # every split holds every class (stratified)
    for _, y in digits.tensors.values():
        assert len(torch.unique(y)) == 10


def test_setup_is_idempotent(digits):
    before = {k: v[0] for k, v in digits.tensors.items()}
    digits.setup("test")
    for k, v in digits.tensors.items():
        assert v[0] is before[k]


def test_train_split_is_standardized(digits, raw_digits):
    x_train = digits.tensors["train"][0].double().numpy()
    raw, target = raw_digits
    train_idx, _, _ = split_indices(len(raw), 0.15, 0.15, 3, stratify=target)
    constant = raw[train_idx].std(axis=0) == 0
    assert constant.any()  # digits has blank border pixels
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0)[~constant], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x_train[:, constant], 0.0)  # centred, not scaled


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_splits_use_training_statistics(digits, raw_digits, split):
    x_eval = digits.tensors[split][0].double().numpy()
    # not standardized with their own statistics
    assert np.abs(x_eval.mean(axis=0)).max() > 1e-2
    own_std = x_eval.std(axis=0)
    assert np.abs(own_std[own_std > 0] - 1.0).max() > 1e-2

    raw, target = raw_digits
    parts = dict(zip(("train", "val", "test"), split_indices(len(raw), 0.15, 0.15, 3, target), strict=True))
    train_raw = raw[parts["train"]]
    mean, std = train_raw.mean(axis=0), train_raw.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    expected = (raw[parts[split]] - mean) / std
    np.testing.assert_allclose(x_eval, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(digits.tensors[split][1].numpy(), target[parts[split]])


def test_standardize_false_keeps_raw_features(raw_digits):
    dm = SklearnDataModule("digits", seed=3, standardize=False)
    dm.setup()
    raw, target = raw_digits
    train_idx, _, _ = split_indices(len(raw), 0.15, 0.15, 3, target)
    np.testing.assert_array_equal(dm.tensors["train"][0].numpy(), raw[train_idx].astype(np.float32))


def test_diabetes_is_regression():
    dm = SklearnDataModule("diabetes", seed=0)
    dm.setup()
    assert dm.task == REGRESSION
    assert dm.n_features == 10
    assert dm.n_outputs == 1
    assert sum(dm.split_sizes().values()) == 442
    raw = sklearn.datasets.load_diabetes()
    parts = split_indices(442, 0.15, 0.15, 0)
    for name, index in zip(("train", "val", "test"), parts, strict=True):
        x, y = dm.tensors[name]
        assert y.dtype == torch.float32
        assert y.shape == (len(index), 1)
        assert x.shape == (len(index), 10)
        np.testing.assert_allclose(y[:, 0].numpy(), raw.target[index], rtol=1e-6)


def test_unknown_set_names_allowed_sets():
    with pytest.raises(ValueError) as info:
        SklearnDataModule("mnist")
    message = str(info.value)
    assert "mnist" in message
    for name in SKLEARN_SETS:
        assert name in message


def test_dataloaders_batch_sizes(digits):
    train = digits.train_dataloader()
    val = digits.val_dataloader()
    assert train.shuffle and not val.shuffle
    assert train.batch_size == 64 and val.batch_size == 4096
    n_train = digits.split_sizes()["train"]
    assert sum(len(y) for _, y in train) in (n_train, n_train - 1)
    ((x_val, y_val),) = list(val)
    assert torch.equal(x_val, digits.tensors["val"][0])
    assert torch.equal(y_val, digits.tensors["val"][1])
