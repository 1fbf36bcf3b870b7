"""Data-derived strength grids (reglab.grid): the zero strength is where the path starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes, load_wine
from sklearn.linear_model import ElasticNet, Lasso

from reglab.grid import main, strength_grid, zero_strength


def test_regression_zero_strength_is_where_sklearns_lasso_and_elastic_net_start():
    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    for l1_ratio, model in ((1.0, Lasso), (0.5, ElasticNet)):
        top = zero_strength(x, y, "regression", l1_ratio)
        options = {"tol": 1e-12} | ({} if model is Lasso else {"l1_ratio": l1_ratio})  # exact near the top
        # reglab's strength = 2 x sklearn's alpha (README, "Conventions of other libraries")
        assert np.all(model(alpha=1.001 * top / 2, **options).fit(x, y).coef_ == 0)
        assert np.any(model(alpha=0.99 * top / 2, **options).fit(x, y).coef_ != 0)


def test_classification_zero_strength_balances_the_cross_entropy_gradient_at_zero_weights():
    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    frequencies = np.bincount(y) / len(y)
    weights = torch.zeros(3, x.shape[1], dtype=torch.float64, requires_grad=True)
    intercepts = torch.tensor(np.log(frequencies))  # the intercept-only optimum
    loss = F.cross_entropy(torch.tensor(x) @ weights.T + intercepts, torch.tensor(y))
    loss.backward()
    assert zero_strength(x, y, "classification") == pytest.approx(weights.grad.abs().max().item(), rel=1e-12)


def test_grid_is_log_spaced_from_the_zero_strength_and_the_command_prints_it(capsys):
    x, y = load_diabetes(return_X_y=True)
    grid = strength_grid(x, y, "regression", points=4, min_ratio=1e-3)
    np.testing.assert_allclose(grid / grid[0], [1, 0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="l1_ratio=0"):
        zero_strength(x, y, "regression", 0.0)
    printed = main(["--points", "3", "data=digits"])
    assert len(printed) == 3 and "zero strength" in capsys.readouterr().out
