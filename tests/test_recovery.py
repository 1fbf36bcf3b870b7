"""Population model error and support recovery of a linear model on a known design."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reglab
from reglab.data.synthetic import SyntheticDataModule
from reglab.models import LinearModel, TargetScale
from reglab.recovery import design_recovery


def _data(**kwargs) -> SyntheticDataModule:
    data = SyntheticDataModule(design="zou_hastie_1", seed=0, **kwargs)
    data.setup()
    return data


def _linear(weights: np.ndarray, bias: float = 0.0) -> LinearModel:
    model = LinearModel(len(weights), 1)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(weights).reshape(1, -1))
        model.bias.fill_(bias)
    return model


def test_the_population_model_error_is_the_expected_squared_error_on_new_samples():
    data = _data(standardize=False)
    estimate = data.coef + np.linspace(-0.5, 0.5, len(data.coef))
    estimate[[2, 3]] = 0.0  # two true zeros kept zero, the other zeros made non-zero
    metrics = design_recovery(_linear(estimate), data)
    draws = np.random.default_rng(1).multivariate_normal(np.zeros(len(estimate)), data.covariance, 400_000)
    monte_carlo = np.mean((draws @ (estimate - data.coef)) ** 2)
    assert metrics["test/population_model_error"] == pytest.approx(monte_carlo, rel=0.01)
    truth = data.coef != 0
    assert metrics["test/support_tpr"] == (estimate[truth] != 0).mean()
    assert metrics["test/support_fpr"] == (estimate[~truth] != 0).mean() == 3 / 5


def test_coefficients_are_read_in_raw_units_through_standardization():
    data = _data(standardize=True)
    scale = data.feature_scale.std
    mean, std = torch.tensor([2.0]), torch.tensor([4.0])
    model = TargetScale(_linear(data.coef * scale / 4.0), mean, std)  # exactly b in raw units
    metrics = design_recovery(model, data)
    assert metrics["test/population_model_error"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["test/support_tpr"] == 1.0 and metrics["test/support_fpr"] == 0.0


def test_a_run_logs_them_and_a_network_or_real_data_does_not():
    overrides = [
        "model=linear",
        "regularizer=l1",
        "regularizer.mode=proximal",
        "regularizer.strength=0.5",
        "optimizer=sgd",
        "optimizer.lr=0.05",
        "trainer.max_epochs=20",
        "logger=none",
    ]
    linear = reglab.run(["data=synthetic", *overrides], verbose=False).metrics
    assert {"test/population_model_error", "test/support_tpr", "test/support_fpr"} <= set(linear)
    assert 0 < linear["test/population_model_error"] < 20
    mlp = reglab.run(
        ["data=synthetic", "model=mlp", "model.hidden=[8]", "trainer.max_epochs=2", "logger=none"],
        verbose=False,
    ).metrics
    diabetes = reglab.run(["data=diabetes", *overrides], verbose=False).metrics
    assert "test/population_model_error" not in mlp and "test/support_tpr" not in diabetes
