"""Unit tests for reglab.module: training loss composition and weight statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reglab.data import CLASSIFICATION, REGRESSION
from reglab.models import MLP, LinearModel
from reglab.module import NEAR_ZERO, RegularizedModule, weight_statistics
from reglab.regularizers import L1, L2, ElasticNet, NoPenalty


def sgd(params):
    return torch.optim.SGD(params, lr=0.1)


def manual_penalty(weights, strength: float, l1_ratio: float) -> float:
    flat = np.concatenate([w.detach().double().numpy().ravel() for w in weights])
    return strength * (l1_ratio * np.abs(flat).sum() + 0.5 * (1 - l1_ratio) * (flat**2).sum())


def classification_batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(12, 6, generator=gen), torch.randint(0, 4, (12,), generator=gen)


def regression_batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(12, 6, generator=gen), torch.randn(12, 2, generator=gen)


# --------------------------------------------------------------------------- training_step


@pytest.mark.parametrize(
    "regularizer,strength,l1_ratio",
    [
        (ElasticNet(0.05, l1_ratio=0.3), 0.05, 0.3),
        (L1(0.02), 0.02, 1.0),
        (L2(0.5), 0.5, 0.0),
        (ElasticNet(0.1, l1_ratio=0.5, include_bias=True), 0.1, 0.5),
    ],
    ids=repr,
)
def test_training_step_classification_is_data_loss_plus_penalty(regularizer, strength, l1_ratio):
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8, 5], batchnorm=True)
    module = RegularizedModule(model, regularizer, sgd, task=CLASSIFICATION, n_outputs=4)
    module.train()
    x, y = classification_batch()

    loss = module.training_step((x, y), 0)

    with torch.no_grad():
        data_loss = F.cross_entropy(model(x), y).item()  # deterministic: no dropout
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    weights = [m.weight for m in linears]
    if regularizer.include_bias:
        weights += [m.bias for m in linears]
    penalty = manual_penalty(weights, strength, l1_ratio)
    assert penalty > 0
    assert loss.ndim == 0 and loss.requires_grad
    assert loss.item() == pytest.approx(data_loss + penalty, rel=1e-6)

    # the epoch accumulators hold sample-weighted sums of loss, data loss, penalty, the
    # number of correct predictions and n
    sums = module._train_sums.tolist()
    assert sums[4] == 12
    with torch.no_grad():
        assert sums[3] == (model(x).argmax(dim=1) == y).sum().item()
    assert sums[0] == pytest.approx(12 * (data_loss + penalty), rel=1e-6)
    assert sums[1] == pytest.approx(12 * data_loss, rel=1e-6)
    assert sums[2] == pytest.approx(12 * penalty, rel=1e-6)


def test_training_step_regression_uses_mse():
    torch.manual_seed(0)
    model = LinearModel(6, 2)
    module = RegularizedModule(model, L2(0.3), sgd, task=REGRESSION, n_outputs=2)
    x, y = regression_batch()
    loss = module.training_step((x, y), 0)
    with torch.no_grad():
        residual = x @ model.weight.T + model.bias - y
        data_loss = residual.square().mean().item()
    penalty = 0.5 * 0.3 * model.weight.detach().square().sum().item()  # bias not penalized
    assert loss.item() == pytest.approx(data_loss + penalty, rel=1e-6)


def test_training_step_without_penalty_is_data_loss():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8])
    module = RegularizedModule(model, NoPenalty(), sgd, task=CLASSIFICATION, n_outputs=4)
    x, y = classification_batch()
    loss = module.training_step((x, y), 0)
    with torch.no_grad():
        assert loss.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-7)
    assert module._train_sums[2].item() == 0.0


def test_training_step_gradient_includes_penalty_gradient():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8]).double()
    module = RegularizedModule(model, ElasticNet(0.2, 0.4), sgd, task=CLASSIFICATION, n_outputs=4)
    x, y = classification_batch()
    x = x.double()
    module.training_step((x, y), 0).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        extra = grads[name] - p.grad
        if name.endswith("weight"):
            w = p.detach()
            expected = 0.2 * (0.4 * w.sign() + 0.6 * w)
        else:
            expected = torch.zeros_like(p)
        torch.testing.assert_close(extra, expected, rtol=1e-10, atol=1e-12)


def test_training_sums_accumulate_and_reset():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8])
    module = RegularizedModule(model, L1(0.01), sgd, task=CLASSIFICATION, n_outputs=4)
    x, y = classification_batch()
    first = module.training_step((x, y), 0).item()
    second = module.training_step((x[:5], y[:5]), 1).item()
    assert module._train_sums[4].item() == 17
    assert module._train_sums[0].item() == pytest.approx(12 * first + 5 * second, rel=1e-6)
    module.on_train_epoch_start()
    assert torch.equal(module._train_sums, torch.zeros(5))


def test_module_selects_penalized_and_monitored_weights():
    model = MLP(6, 4, hidden=[8], batchnorm=True)
    module = RegularizedModule(model, L2(0.1, include_bias=True), sgd, CLASSIFICATION, 4)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [id(p) for p in module.weights] == [id(m.weight) for m in linears]
    assert {id(p) for p in module.penalized} == {id(p) for m in linears for p in m.parameters()}


# --------------------------------------------------------------------------- weight_statistics


def test_weight_statistics_hand_made():
    a = torch.tensor([[0.0, 5e-4, -2.0], [3.0, 0.0, -1e-3]], dtype=torch.float64)
    b = torch.tensor([[-4.0], [9.99e-4], [1e-4], [-0.5]], dtype=torch.float64)
    stats = weight_statistics([a, b])
    assert set(stats) == {
        "weights/l1",
        "weights/l2",
        "weights/zero_fraction",
        "weights/near_zero_fraction",
    }
    # values: 0, 5e-4, -2, 3, 0, -1e-3, -4, 9.99e-4, 1e-4, -0.5  (10 entries)
    l1 = 5e-4 + 2 + 3 + 1e-3 + 4 + 9.99e-4 + 1e-4 + 0.5
    l2 = math.sqrt(5e-4**2 + 4 + 9 + 1e-3**2 + 16 + 9.99e-4**2 + 1e-4**2 + 0.25)
    assert stats["weights/l1"].item() == pytest.approx(l1, rel=1e-12)
    assert stats["weights/l2"].item() == pytest.approx(l2, rel=1e-12)
    assert stats["weights/zero_fraction"].item() == pytest.approx(2 / 10, abs=1e-7)
    # |w| < 1e-3: 0, 5e-4, 0, 9.99e-4, 1e-4 (the value -1e-3 itself is not below)
    assert stats["weights/near_zero_fraction"].item() == pytest.approx(5 / 10, abs=1e-7)
    assert NEAR_ZERO == 1e-3


def test_weight_statistics_all_zero_and_no_zero():
    zeros = weight_statistics([torch.zeros(3, 4)])
    assert zeros["weights/l1"].item() == 0.0
    assert zeros["weights/l2"].item() == 0.0
    assert zeros["weights/zero_fraction"].item() == 1.0
    assert zeros["weights/near_zero_fraction"].item() == 1.0

    dense = weight_statistics([torch.full((2, 2), -0.5), torch.full((1, 2), 2.0)])
    assert dense["weights/l1"].item() == pytest.approx(6.0, rel=1e-7)
    assert dense["weights/l2"].item() == pytest.approx(math.sqrt(4 * 0.25 + 2 * 4.0), rel=1e-7)
    assert dense["weights/zero_fraction"].item() == 0.0
    assert dense["weights/near_zero_fraction"].item() == 0.0


def test_weight_statistics_empty_and_no_grad():
    assert weight_statistics([]) == {}
    w = torch.tensor([[1.0, -1.0]], requires_grad=True)
    stats = weight_statistics([w])
    assert all(not v.requires_grad for v in stats.values())
