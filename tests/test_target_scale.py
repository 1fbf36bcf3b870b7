"""Regression targets standardized for fitting, predictions and metrics in their own units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from reglab.config import compose
from reglab.models import LinearModel, TargetScale
from reglab.module import RegularizedModule
from reglab.pipeline import prepare
from reglab.regularizers import NoPenalty


def test_the_loss_is_the_inner_networks_mse_on_standardized_targets():
    torch.manual_seed(0)
    net, mean, std = LinearModel(3, 2), torch.tensor([150.0, -4.0]), torch.tensor([77.0, 0.5])
    model = TargetScale(net, mean, std)
    module = RegularizedModule(model, NoPenalty(), torch.optim.SGD, "regression", 2)
    x, y = torch.randn(16, 3), torch.randn(16, 2) * std + mean
    assert torch.allclose(model(x), net(x) * std + mean)
    expected = F.mse_loss(net(x), (y - mean) / std)
    assert torch.allclose(module.data_loss(model(x), y), expected, rtol=1e-5)
    assert {n for n, _ in model.named_parameters()} == {"net.weight", "net.bias"}  # mean, std: buffers


def test_diabetes_fits_standardized_targets_and_keeps_them_in_tensors_unscaled():
    cfg = compose(["data=diabetes", "model=linear", "logger=none"])
    parts = prepare(cfg)
    y = parts.datamodule.tensors["train"][1]
    mean, std = parts.datamodule.target_scale
    assert float(y.mean()) > 100  # diabetes' targets in their own units (mean ~150)
    assert torch.allclose(mean, y.mean(0)) and torch.allclose(std, y.std(0, unbiased=False), rtol=1e-5)
    assert isinstance(parts.model, TargetScale)
    raw = instantiate(compose(["data=diabetes", "data.standardize_target=false"]).data)
    raw.setup()
    assert raw.target_scale is None
    assert (
        parts.datamodule.target_scale is not None
        and compose(["data=digits"]).data.get("standardize_target") is None
    )
