"""Unit tests for reglab.module: training loss composition and weight statistics."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reglab.data import CLASSIFICATION, REGRESSION
from reglab.models import MLP, LinearModel
from reglab.module import NEAR_ZERO, RegularizedModule, weight_statistics
from reglab.regularizers import L1, L2, ElasticNet, GroupLasso, NoPenalty, Regularizer, adds_own_gradient


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
    "regularizer",
    [ElasticNet(0.05, l1_ratio=0.3), L1(0.02), L2(0.5), ElasticNet(0.1, include_bias=True), NoPenalty()],
    ids=repr,
)
def test_training_step_returns_the_data_loss_and_sums_it(regularizer):
    """Built-in penalties reach the gradient through the optimizer-step hook, so the
    step's loss is the data loss; the epoch sums hold sum(n * data loss), correct, n."""
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8, 5], batchnorm=True)
    module = RegularizedModule(model, regularizer, sgd, task=CLASSIFICATION, n_outputs=4)
    module.train()
    x, y = classification_batch()

    loss = module.training_step((x, y), 0)

    with torch.no_grad():
        output = model(x)  # deterministic: no dropout
    assert loss.ndim == 0 and loss.requires_grad
    assert loss.item() == pytest.approx(F.cross_entropy(output, y).item(), rel=1e-6)
    data_sum, correct, n = module._train_sums.tolist()
    assert n == 12 and correct == (output.argmax(dim=1) == y).sum().item()
    assert data_sum == pytest.approx(12 * loss.item(), rel=1e-6)


def test_training_step_regression_uses_mse():
    torch.manual_seed(0)
    model = LinearModel(6, 2)
    module = RegularizedModule(model, L2(0.3), sgd, task=REGRESSION, n_outputs=2)
    x, y = regression_batch()
    loss = module.training_step((x, y), 0)
    with torch.no_grad():
        residual = x @ model.weight.T + model.bias - y
    assert loss.item() == pytest.approx(residual.square().mean().item(), rel=1e-6)


class _SquaredSum(Regularizer):
    """A user regularizer without add_gradient: autograd must differentiate it."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        self.strength = strength

    def penalty(self, weights):
        return self.strength * sum(w.square().sum() for w in weights)


class _ElasticNetVariant(ElasticNet):
    """Overrides penalty only: must not inherit ElasticNet's gradient."""

    def penalty(self, weights):
        return 3.0 * super().penalty(weights)


@pytest.mark.parametrize(
    "regularizer",
    [
        ElasticNet(0.2, l1_ratio=0.4),
        L1(0.3),
        L2(0.5),
        ElasticNet(0.1, l1_ratio=0.7, include_bias=True),
        GroupLasso(0.2, mode="penalty"),
        NoPenalty(),
        _SquaredSum(0.25),
        _ElasticNetVariant(0.2, l1_ratio=0.4),
    ],
    ids=lambda r: type(r).__name__ + ("+bias" if r.include_bias else ""),
)
def test_step_gradient_is_autograds_gradient_of_data_loss_plus_penalty(regularizer):
    """training_step + backward + on_before_optimizer_step leave in .grad exactly the
    gradient of data_loss + penalty, whichever path the regularizer takes."""
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8]).double()
    with torch.no_grad():
        model[0].weight[:2].zero_()  # exact zeros: sign(0) = 0 and a dead unit for group lasso
    module = RegularizedModule(model, regularizer, sgd, task=CLASSIFICATION, n_outputs=4)
    optimizer = module.configure_optimizers()
    x, y = classification_batch()
    x = x.double()

    module.training_step((x, y), 0).backward()
    module.on_before_optimizer_step(optimizer)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad(set_to_none=True)
    (F.cross_entropy(model(x), y) + regularizer.penalty(regularizer.select(model))).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-12, atol=1e-14, msg=name)
    assert module.penalty_by_hook == adds_own_gradient(regularizer)
    assert module.penalty_in_graph == (not adds_own_gradient(regularizer))


def test_training_sums_accumulate_and_reset():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[8])
    module = RegularizedModule(model, L1(0.01), sgd, task=CLASSIFICATION, n_outputs=4)
    x, y = classification_batch()
    first = module.training_step((x, y), 0).item()
    second = module.training_step((x[:5], y[:5]), 1).item()
    assert module._train_sums[2].item() == 17
    assert module._train_sums[0].item() == pytest.approx(12 * first + 5 * second, rel=1e-6)
    module.on_train_epoch_start()
    assert torch.equal(module._train_sums, torch.zeros(3))


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


def test_near_zero_threshold_is_the_documented_one_and_the_one_used(monkeypatch):
    """docs/tracking.md: near_zero_fraction is the share with ``|w| < 1e-3``; the statistic reads
    ``NEAR_ZERO`` when it runs (no copy of the number elsewhere)."""
    from conftest import ROOT

    page = (ROOT / "docs" / "tracking.md").read_text()  # "What a run records"
    documented = re.search(r"near_zero_fraction` \|.*`\|w\| < ([0-9.e-]+)`", page)
    assert documented and float(documented.group(1)) == NEAR_ZERO
    w = [torch.tensor([[5e-4, 5e-3, 5e-2, 0.5]])]
    assert weight_statistics(w)["weights/near_zero_fraction"].item() == pytest.approx(1 / 4)
    monkeypatch.setattr("reglab.module.NEAR_ZERO", 0.1)
    assert weight_statistics(w)["weights/near_zero_fraction"].item() == pytest.approx(3 / 4)


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
