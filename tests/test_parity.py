"""reglab's penalties against scikit-learn's reference solvers, under the documented mapping.

Each case trains ``model=linear`` through the full pipeline (``reglab.run``) to
convergence: full batch, plain SGD without momentum, proximal mode, no early stopping,
no validation. The conditions of exact parity are configuration, not test tricks:
``data.batch_size=null`` (full batch), ``regularizer.include_bias=false`` (intercept not
penalized, as in sklearn), ``data.standardize=true``, and sklearn is fitted on the same
training split (``result.data.tensors["train"]``).
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge

import reglab
from reglab import conventions

pytestmark = pytest.mark.slow

CONVERGED = [
    "model=linear",
    "data.batch_size=null",
    "data.standardize=true",
    "++data.standardize_target=false",  # sklearn fits the targets in their units
    "optimizer=sgd",
    "optimizer.momentum=0",
    "regularizer.include_bias=false",
    "callbacks=none",
    "+trainer.limit_val_batches=0",
    "logger=none",
]


STEPS_PER_EPOCH = 100  # data.repeat: full-batch steps per Lightning epoch, whose own overhead they share


def fit_reglab(data: str, regularizer: str, penalty: conventions.Penalty, mode: str, lr: float, steps: int):
    result = reglab.run(
        [
            *CONVERGED,
            f"data={data}",
            f"regularizer={regularizer}",
            f"regularizer.mode={mode}",
            f"regularizer.strength={penalty.strength}",
            f"optimizer.lr={lr}",
            f"+data.repeat={STEPS_PER_EPOCH}",
            f"trainer.max_epochs={steps // STEPS_PER_EPOCH}",
            *([f"regularizer.l1_ratio={penalty.l1_ratio}"] if regularizer == "elastic" else []),
        ]
    )
    x, y = result.data.tensors["train"]
    coef = result.model.weight.detach().double().numpy()
    return coef, x.double().numpy(), y.numpy()


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("alpha", [0.1, 0.5, 2.0])
def test_lasso_parity_and_zero_pattern_on_diabetes(alpha):
    penalty = conventions.from_sklearn_lasso(alpha)
    coef, x, y = fit_reglab("diabetes", "l1", penalty, "proximal", lr=0.12, steps=3000)
    reference = Lasso(alpha=alpha, tol=1e-12, max_iter=1_000_000).fit(x, y.ravel()).coef_
    difference = relative_difference(coef.ravel(), reference)
    print(
        f"Lasso alpha={alpha}: max |coef diff| / max |coef| = {difference:.2e}, "
        f"zeros reglab {np.flatnonzero(coef.ravel() == 0)} sklearn {np.flatnonzero(reference == 0)}"
    )
    assert difference <= 1e-3
    np.testing.assert_array_equal(coef.ravel() == 0, reference == 0)


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.3, 0.3), (1.0, 0.7)])
def test_elastic_net_parity_on_diabetes(alpha, l1_ratio):
    penalty = conventions.from_sklearn_elastic_net(alpha, l1_ratio)
    coef, x, y = fit_reglab("diabetes", "elastic", penalty, "proximal", lr=0.12, steps=3000)
    reference = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=1_000_000)
    reference = reference.fit(x, y.ravel()).coef_
    difference = relative_difference(coef.ravel(), reference)
    print(f"ElasticNet alpha={alpha} l1_ratio={l1_ratio}: relative max diff {difference:.2e}")
    assert difference <= 1e-3
    np.testing.assert_array_equal(coef.ravel() == 0, reference == 0)


@pytest.mark.parametrize(("alpha", "mode"), [(3.0, "penalty"), (60.0, "proximal")])
def test_ridge_parity_on_diabetes(alpha, mode):
    n_train = 309
    penalty = conventions.from_sklearn_ridge(alpha, n_train)
    coef, x, y = fit_reglab("diabetes", "l2", penalty, mode, lr=0.12, steps=3000)
    assert len(x) == n_train
    reference = Ridge(alpha=alpha, tol=1e-12).fit(x, y.ravel()).coef_
    difference = relative_difference(coef.ravel(), reference)
    print(f"Ridge alpha={alpha} ({mode}): relative max diff {difference:.2e}")
    assert difference <= 1e-3


def _logistic(C: float, l1_ratio: float) -> LogisticRegression:  # noqa: N803
    solver = "lbfgs" if l1_ratio == 0 else "saga"
    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8):
        return LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=1e-10, max_iter=200_000)
    penalty = "l2" if l1_ratio == 0 else "l1"
    return LogisticRegression(C=C, penalty=penalty, solver=solver, tol=1e-10, max_iter=200_000)


@pytest.mark.parametrize(("C", "l1_ratio", "lr"), [(0.1, 0.0, 0.3), (0.2, 1.0, 0.5)])
def test_multinomial_logistic_regression_parity_on_wine(C, l1_ratio, lr):  # noqa: N803
    probe = reglab.run(["data=wine", "logger=none", "trainer.max_epochs=1", "model=linear"])
    n_train = len(probe.data.tensors["train"][0])
    penalty = conventions.from_sklearn_logistic(C, n_train, l1_ratio, n_classes=3)
    regularizer = "l2" if l1_ratio == 0 else "l1"
    coef, x, y = fit_reglab("wine", regularizer, penalty, "proximal", lr=lr, steps=4000)
    reference = _logistic(C, l1_ratio).fit(x, y).coef_
    difference = relative_difference(coef, reference)
    print(f"LogisticRegression C={C} l1_ratio={l1_ratio}: relative max diff {difference:.2e}")
    assert difference <= 1e-3
    if l1_ratio == 1:
        np.testing.assert_array_equal(coef == 0, reference == 0)


@pytest.mark.parametrize(("C", "l1_ratio", "lr", "steps"), [(0.1, 0.0, 0.2, 6000), (0.05, 1.0, 0.5, 6000)])
def test_binary_logistic_regression_parity_on_breast_cancer(C, l1_ratio, lr, steps):  # noqa: N803
    """Two classes: reglab's two rows W0, W1 against sklearn's one vector, compared as
    ``W1 - W0`` with the binary row of the convention table."""
    probe = reglab.run(["data=breast_cancer", "logger=none", "trainer.max_epochs=1", "model=linear"])
    n_train = len(probe.data.tensors["train"][0])
    penalty = conventions.from_sklearn_logistic(C, n_train, l1_ratio, n_classes=2)
    regularizer = "l2" if l1_ratio == 0 else "l1"
    rows, x, y = fit_reglab("breast_cancer", regularizer, penalty, "proximal", lr=lr, steps=steps)
    coef = rows[1] - rows[0]
    reference = _logistic(C, l1_ratio).fit(x, y).coef_[0]
    difference = relative_difference(coef, reference)
    print(f"binary LogisticRegression C={C} l1_ratio={l1_ratio}: relative max diff {difference:.2e}")
    assert difference <= 1e-4
    if l1_ratio == 1:
        np.testing.assert_array_equal(coef == 0, reference == 0)
