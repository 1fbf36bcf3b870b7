"""Every row of the convention table (docs/penalties.md, "Conventions of other libraries"):
the other library's objective equals reglab's (``mean data loss + ElasticNet(strength,
l1_ratio)``) up to a positive factor, so both have the same minimizer. The training-level
check is tests/test_parity.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reglab import conventions
from reglab.regularizers import L2, ElasticNet

rng = np.random.default_rng(0)
N, D, K = 40, 5, 3
X = torch.tensor(rng.normal(size=(N, D)))
Y = torch.tensor(rng.normal(size=N))
LABELS = torch.tensor(rng.integers(0, K, size=N))


def reglab_objective(loss: torch.Tensor, w: torch.Tensor, penalty: conventions.Penalty) -> float:
    return float(loss + ElasticNet(penalty.strength, penalty.l1_ratio).penalty([w]))


def candidates(shape):
    return [torch.tensor(rng.normal(size=shape)) for _ in range(4)]


def assert_proportional(ours: list[float], theirs: list[float]) -> None:
    ratios = np.array(ours) / np.array(theirs)
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-10)
    assert ratios[0] > 0


@pytest.mark.parametrize(("name", "l1_ratio"), [("lasso", 1.0), ("elastic_net", 0.3)])
def test_sklearn_lasso_and_elastic_net_rows(name, l1_ratio):
    alpha = 0.7
    penalty = (
        conventions.from_sklearn_lasso(alpha)
        if name == "lasso"
        else conventions.from_sklearn_elastic_net(alpha, l1_ratio)
    )
    ours, theirs = [], []
    for w in candidates(D):
        residual = Y - X @ w
        mse = residual.square().mean()
        ours.append(reglab_objective(mse, w.view(1, -1), penalty))
        theirs.append(
            float(
                residual.square().sum() / (2 * N)
                + alpha * l1_ratio * w.abs().sum()
                + alpha * (1 - l1_ratio) / 2 * w.square().sum()
            )
        )
    assert_proportional(ours, theirs)


def test_sklearn_ridge_row():
    alpha = 2.5
    penalty = conventions.from_sklearn_ridge(alpha, N)
    ours, theirs = [], []
    for w in candidates(D):
        residual = Y - X @ w
        ours.append(reglab_objective(residual.square().mean(), w.view(1, -1), penalty))
        theirs.append(float(residual.square().sum() + alpha * w.square().sum()))
    assert_proportional(ours, theirs)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0, 0.5])
def test_sklearn_logistic_regression_row(l1_ratio):
    C = 0.3  # noqa: N806
    penalty = conventions.from_sklearn_logistic(C, N, l1_ratio, n_classes=K)
    ours, theirs = [], []
    for w in candidates((K, D)):
        logits = X @ w.T
        ours.append(reglab_objective(F.cross_entropy(logits, LABELS), w, penalty))
        theirs.append(
            float(
                C * F.cross_entropy(logits, LABELS, reduction="sum")
                + l1_ratio * w.abs().sum()
                + (1 - l1_ratio) / 2 * w.square().sum()
            )
        )
    assert_proportional(ours, theirs)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0, 0.5])
def test_sklearn_binary_logistic_regression_row(l1_ratio):
    """Two classes: sklearn's one vector beta against reglab's two rows at the split that
    minimizes reglab's penalty for that beta (W1 = -W0 = beta / 2)."""
    C = 0.3  # noqa: N806
    penalty = conventions.from_sklearn_logistic(C, N, l1_ratio, n_classes=2)
    labels = (LABELS > 0).long()
    ours, theirs = [], []
    for beta in candidates(D):
        rows = torch.stack([-beta / 2, beta / 2])
        ours.append(reglab_objective(F.cross_entropy(X @ rows.T, labels), rows, penalty))
        logit = X @ beta
        theirs.append(
            float(
                C * F.binary_cross_entropy_with_logits(logit, labels.double(), reduction="sum")
                + l1_ratio * beta.abs().sum()
                + (1 - l1_ratio) / 2 * beta.square().sum()
            )
        )
    assert_proportional(ours, theirs)
    assert penalty.strength == pytest.approx((2 - l1_ratio) / (N * C))


def test_pytorch_sgd_weight_decay_row():
    decay = 0.05
    penalty = conventions.from_sgd_weight_decay(decay)
    start = torch.tensor(rng.normal(size=(3, D)))
    with_penalty = start.clone().requires_grad_()
    with_decay = start.clone().requires_grad_()
    loss = lambda w: (X @ w.T).square().mean()  # noqa: E731
    sgd_penalty = torch.optim.SGD([with_penalty], lr=0.1)
    sgd_decay = torch.optim.SGD([with_decay], lr=0.1, weight_decay=decay)
    (loss(with_penalty) + L2(penalty.strength).penalty([with_penalty])).backward()
    loss(with_decay).backward()
    sgd_penalty.step()
    sgd_decay.step()
    torch.testing.assert_close(with_penalty, with_decay)


@pytest.mark.parametrize(("l1", "l2"), [(0.01, 0.0), (0.0, 0.02), (0.01, 0.02)])
def test_keras_l1l2_row(l1, l2):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    penalty = conventions.from_keras_l1l2(l1, l2)
    w = rng.normal(size=(4, D)).astype("float32")
    theirs = float(keras.regularizers.L1L2(l1=l1, l2=l2)(keras.ops.convert_to_tensor(w)))
    ours = float(ElasticNet(penalty.strength, penalty.l1_ratio).penalty([torch.tensor(w)]))
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_textbook_lambda_over_2m_row():
    lam = 3.0
    penalty = conventions.from_textbook_l2(lam, N)
    for w in candidates(D):
        j = (Y - X @ w).square().mean()
        textbook = float(j + lam / (2 * N) * w.square().sum())
        assert reglab_objective(j, w.view(1, -1), penalty) == pytest.approx(textbook, rel=1e-12)
