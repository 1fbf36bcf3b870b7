"""Unit tests for reglab.regularizers: penalty values, gradients, weight selection."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from reglab.models import MLP
from reglab.regularizers import (
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    NoPenalty,
    Regularizer,
    adds_own_gradient,
    select_weights,
)

STRENGTHS = [0.0, 1e-3, 0.5, 2.0]
L1_RATIOS = [0.0, 0.25, 0.5, 0.8, 1.0]


def make_weights(requires_grad: bool = True) -> list[torch.Tensor]:
    """Small float64 tensors of several shapes, including exact zeros and negatives."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    a[0, 1] = 0.0
    a[2, 3] = 0.0
    b = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    b[1, 0] = 0.0
    c = torch.tensor([[[1.5, -2.0], [0.25, -0.75]]], dtype=torch.float64)  # 3-d "kernel"
    return [t.requires_grad_(requires_grad) for t in (a, b, c)]


def formula_penalty(weights, strength: float, l1_ratio: float) -> float:
    flat = np.concatenate([w.detach().numpy().ravel() for w in weights])
    l1 = np.abs(flat).sum()
    sq_l2 = (flat**2).sum()
    return strength * (l1_ratio * l1 + 0.5 * (1.0 - l1_ratio) * sq_l2)


def formula_grad(w: torch.Tensor, strength: float, l1_ratio: float) -> np.ndarray:
    x = w.detach().numpy()
    return strength * (l1_ratio * np.sign(x) + (1.0 - l1_ratio) * x)


def build(kind: str, strength: float, l1_ratio: float) -> tuple[Regularizer, float, float]:
    """Regularizer of ``kind`` and the (strength, l1_ratio) of the formula it must follow."""
    if kind == "none":
        return NoPenalty(), 0.0, 0.0
    if kind == "l1":
        return L1(strength), strength, 1.0
    if kind == "l2":
        return L2(strength), strength, 0.0
    return ElasticNet(strength, l1_ratio=l1_ratio), strength, l1_ratio


CASES = (
    [("none", 0.0, 0.0)]
    + [("l1", s, 1.0) for s in STRENGTHS]
    + [("l2", s, 0.0) for s in STRENGTHS]
    + [("elastic", s, r) for s in STRENGTHS for r in L1_RATIOS]
)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("kind,strength,l1_ratio", CASES)
def test_penalty_value_matches_formula(kind, strength, l1_ratio):
    reg, s, r = build(kind, strength, l1_ratio)
    weights = make_weights()
    value = reg.penalty(weights)
    assert value.ndim == 0
    expected = formula_penalty(weights, s, r)
    assert value.item() == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_penalty_value_hand_computed():
    # w = [[1, -2], [0, 3]]: ||w||_1 = 6, ||w||_2^2 = 14
    w = torch.tensor([[1.0, -2.0], [0.0, 3.0]], dtype=torch.float64)
    assert ElasticNet(0.3, l1_ratio=0.4).penalty([w]).item() == pytest.approx(
        0.3 * (0.4 * 6 + 0.5 * 0.6 * 14), rel=1e-12
    )
    assert L1(0.5).penalty([w]).item() == pytest.approx(3.0, rel=1e-12)
    assert L2(0.5).penalty([w]).item() == pytest.approx(0.5 * 0.5 * 14, rel=1e-12)
    assert NoPenalty().penalty([w]).item() == 0.0


@pytest.mark.parametrize("strength", STRENGTHS)
def test_l1_and_l2_are_elastic_net_limits(strength):
    weights = make_weights(requires_grad=False)
    assert L1(strength).penalty(weights).item() == pytest.approx(
        ElasticNet(strength, l1_ratio=1.0).penalty(weights).item(), rel=1e-14, abs=0
    )
    assert L2(strength).penalty(weights).item() == pytest.approx(
        ElasticNet(strength, l1_ratio=0.0).penalty(weights).item(), rel=1e-14, abs=0
    )
    assert L1(strength).l1_ratio == 1.0
    assert L2(strength).l1_ratio == 0.0


@pytest.mark.parametrize("reg", [NoPenalty(), L1(0.1), L2(0.1), ElasticNet(0.1, 0.5)], ids=repr)
def test_penalty_of_no_weights_is_zero(reg):
    value = reg.penalty([])
    assert value.ndim == 0
    assert value.item() == 0.0


def test_penalty_of_all_zero_weights_is_zero_with_zero_gradient():
    w = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    value = ElasticNet(1.0, l1_ratio=0.5).penalty([w])
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(w.grad, torch.zeros_like(w))


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind,strength,l1_ratio", [c for c in CASES if c[0] != "none"])
def test_gradient_matches_formula(kind, strength, l1_ratio):
    reg, s, r = build(kind, strength, l1_ratio)
    weights = make_weights()
    reg.penalty(weights).backward()
    for w in weights:
        assert w.grad is not None
        np.testing.assert_allclose(w.grad.numpy(), formula_grad(w, s, r), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind,strength,l1_ratio", CASES)
def test_add_gradient_equals_autograd_on_top_of_an_existing_gradient(kind, strength, l1_ratio):
    reg, _, _ = build(kind, strength, l1_ratio)
    by_autograd, direct = make_weights(), make_weights()
    for w in by_autograd[:2] + direct[:2]:
        w.grad = torch.full_like(w, 0.125)  # a data-loss gradient already there
    (sum((w * 0.125).sum() for w in by_autograd[2:]) + reg.penalty(by_autograd)).backward()
    reg.add_gradient(direct)  # direct[2] has no .grad yet: counts as zero
    for a, b in zip(by_autograd, direct, strict=True):
        expected = a.grad - (0.125 if a is by_autograd[2] else 0)
        if b.grad is None:  # no penalty, no gradient where there was none, as with autograd
            assert kind == "none" and b is direct[2]
        else:
            np.testing.assert_allclose(b.grad.numpy(), expected.numpy(), rtol=1e-12, atol=1e-14)


def test_group_lasso_add_gradient_equals_autograd_for_conv_kernels_and_dead_units():
    gen = torch.Generator().manual_seed(0)
    kernels = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in [(4, 3, 3, 3), (5, 4)]]
    kernels[0][1].zero_()  # a dead filter: sub-gradient 0
    by_autograd = [k.clone().requires_grad_() for k in kernels]
    direct = [k.clone().requires_grad_() for k in kernels]
    reg = GroupLasso(0.3, mode="penalty")
    reg.penalty(by_autograd).backward()
    reg.add_gradient(direct)
    for a, b in zip(by_autograd, direct, strict=True):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert torch.equal(direct[0].grad[1], torch.zeros(3, 3, 3, dtype=torch.float64))


def test_only_a_class_that_owns_its_penalty_owns_its_gradient():
    class Custom(Regularizer):
        def penalty(self, weights):
            return sum(w.abs().sum() for w in weights)

    class Tripled(ElasticNet):
        def penalty(self, weights):
            return 3 * super().penalty(weights)

    class WithGradient(Tripled):
        def add_gradient(self, weights):
            pass

    built_in = (L1(0.1), L2(0.1), ElasticNet(0.1), NoPenalty(), GroupLasso(0.1))
    assert all(adds_own_gradient(r) for r in built_in)
    assert not adds_own_gradient(Custom())
    assert not adds_own_gradient(Tripled(0.1))
    assert adds_own_gradient(WithGradient(0.1))


def test_l1_gradient_at_exact_zero_is_zero():
    w = torch.tensor([[0.0, 2.0], [-3.0, 0.0]], dtype=torch.float64, requires_grad=True)
    L1(0.7).penalty([w]).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0.0, 0.7], [-0.7, 0.0]])


def test_no_penalty_adds_no_gradient():
    weights = make_weights()
    data_loss = sum((w * w.detach().cos()).sum() for w in weights)
    (data_loss + NoPenalty().penalty(weights)).backward()
    for w in weights:
        np.testing.assert_array_equal(w.grad.numpy(), w.detach().cos().numpy())


# --------------------------------------------------------------------------- selection


def bn_mlp(**kwargs) -> MLP:
    torch.manual_seed(0)
    return MLP(5, 3, hidden=[6, 4], batchnorm=True, **kwargs)


def ids(params) -> list[int]:
    return [id(p) for p in params]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_select_weights_picks_only_linear_weight_matrices(dropout):
    model = bn_mlp(dropout=dropout)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    bns = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == 3 and len(bns) == 2

    selected = select_weights(model)
    assert ids(selected) == ids(m.weight for m in linears)
    excluded = {id(p) for m in bns for p in m.parameters()} | {id(m.bias) for m in linears}
    assert not excluded & set(ids(selected))


def test_select_weights_with_bias_adds_linear_biases_but_no_batchnorm():
    model = bn_mlp()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    bns = [m for m in model if isinstance(m, nn.BatchNorm1d)]

    selected = select_weights(model, include_bias=True)
    expected = {id(m.weight) for m in linears} | {id(m.bias) for m in linears}
    assert len(selected) == 6
    assert set(ids(selected)) == expected
    bn_params = {id(p) for m in bns for p in m.parameters()}
    assert not bn_params & set(ids(selected))


@pytest.mark.parametrize("include_bias", [False, True])
def test_regularizer_select_follows_include_bias(include_bias):
    model = bn_mlp()
    reg = ElasticNet(0.1, 0.5, include_bias=include_bias)
    assert ids(reg.select(model)) == ids(select_weights(model, include_bias=include_bias))
    assert ids(L1(0.1, include_bias=include_bias).select(model)) == ids(reg.select(model))
    assert ids(L2(0.1, include_bias=include_bias).select(model)) == ids(reg.select(model))


def test_select_weights_skips_frozen_parameters():
    model = bn_mlp()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    linears[0].weight.requires_grad_(False)
    selected = select_weights(model)
    assert ids(selected) == ids([linears[1].weight, linears[2].weight])


@pytest.mark.parametrize("reg", [L1(0.2), L2(0.2), ElasticNet(0.2, 0.3)], ids=repr)
def test_backward_of_penalty_leaves_biases_and_batchnorm_without_grad(reg):
    model = bn_mlp().double()
    penalized = reg.select(model)
    loss = reg.penalty(penalized)
    loss.backward()
    for module in model:
        if isinstance(module, nn.Linear):
            assert module.bias.grad is None
            assert module.weight.grad is not None
            np.testing.assert_allclose(
                module.weight.grad.numpy(),
                formula_grad(module.weight, reg.strength, reg.l1_ratio),
                rtol=1e-12,
                atol=1e-14,
            )
        elif isinstance(module, nn.BatchNorm1d):
            assert module.weight.grad is None
            assert module.bias.grad is None


def test_backward_with_include_bias_gives_bias_gradients_but_not_batchnorm():
    model = bn_mlp().double()
    reg = ElasticNet(0.2, 0.3, include_bias=True)
    reg.penalty(reg.select(model)).backward()
    for module in model:
        if isinstance(module, nn.Linear):
            np.testing.assert_allclose(
                module.bias.grad.numpy(), formula_grad(module.bias, 0.2, 0.3), rtol=1e-12
            )
        elif isinstance(module, nn.BatchNorm1d):
            assert module.weight.grad is None and module.bias.grad is None


# --------------------------------------------------------------------------- constructor


@pytest.mark.parametrize(
    "make",
    [
        lambda: ElasticNet(-0.1),
        lambda: ElasticNet(-1e-12, 0.5),
        lambda: ElasticNet(0.1, l1_ratio=-0.01),
        lambda: ElasticNet(0.1, l1_ratio=1.01),
        lambda: ElasticNet(0.1, l1_ratio=2.0),
        lambda: L1(-1.0),
        lambda: L2(-1e-4),
    ],
)
def test_constructor_rejects_bad_values(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("strength,l1_ratio", [(0.0, 0.0), (0.0, 1.0), (3.0, 0.0), (3.0, 1.0)])
def test_constructor_accepts_boundaries(strength, l1_ratio):
    reg = ElasticNet(strength, l1_ratio=l1_ratio)
    assert reg.strength == strength and reg.l1_ratio == l1_ratio
    assert isinstance(reg.strength, float) and isinstance(reg.l1_ratio, float)


def test_strength_error_message_names_value():
    with pytest.raises(ValueError, match="strength"):
        ElasticNet(-2.0)
    with pytest.raises(ValueError, match="l1_ratio"):
        ElasticNet(1.0, l1_ratio=1.5)


# --------------------------------------------------------------------------- SGD equivalence


def _sgd_models():
    torch.manual_seed(1)
    model = MLP(4, 2, hidden=[5]).double()
    return model, copy.deepcopy(model)


def _decayed_groups(model: nn.Module, strength: float) -> list[dict]:
    weights = select_weights(model)
    weight_ids = set(ids(weights))
    others = [p for p in model.parameters() if id(p) not in weight_ids]
    return [
        {"params": weights, "weight_decay": strength},
        {"params": others, "weight_decay": 0.0},
    ]


@pytest.mark.parametrize("strength", [1e-3, 0.1, 0.7])
def test_l2_gradient_equals_sgd_weight_decay_zero_data_loss(strength):
    lr = 0.5
    penalized_model, decayed_model = _sgd_models()
    before = [p.detach().clone() for p in penalized_model.parameters()]

    reg = L2(strength)
    opt_a = torch.optim.SGD(penalized_model.parameters(), lr=lr)
    opt_a.zero_grad()
    loss = reg.penalty(reg.select(penalized_model))  # zero data loss
    loss.backward()
    opt_a.step()

    opt_b = torch.optim.SGD(_decayed_groups(decayed_model, strength), lr=lr)
    for p in decayed_model.parameters():
        p.grad = torch.zeros_like(p)  # zero data-loss gradient
    opt_b.step()

    for a, b in zip(penalized_model.parameters(), decayed_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)
    # the step actually moved the weight matrices (w <- (1 - lr * strength) * w)
    torch.testing.assert_close(
        penalized_model[0].weight, (1 - lr * strength) * before[0], rtol=1e-14, atol=1e-15
    )
    torch.testing.assert_close(penalized_model[0].bias, before[1], rtol=0, atol=0)


def test_l2_with_data_loss_equals_sgd_weight_decay():
    strength, lr = 0.05, 0.3
    penalized_model, decayed_model = _sgd_models()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (8,), generator=gen)

    reg = L2(strength)
    opt_a = torch.optim.SGD(penalized_model.parameters(), lr=lr)
    loss_a = nn.functional.cross_entropy(penalized_model(x), y) + reg.penalty(reg.select(penalized_model))
    loss_a.backward()
    opt_a.step()

    opt_b = torch.optim.SGD(_decayed_groups(decayed_model, strength), lr=lr)
    nn.functional.cross_entropy(decayed_model(x), y).backward()
    opt_b.step()

    for a, b in zip(penalized_model.parameters(), decayed_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_stacked_elastic_gradient_gives_each_member_its_own_regularizers_gradient():
    """add_elastic_gradient over weights stacked on a member axis, with per-member
    coefficients, equals each member's own regularizer's add_gradient on its slice."""
    from reglab.regularizers import ElasticNet, add_elastic_gradient

    torch.manual_seed(0)
    members = [L1(0.3), L2(0.2), ElasticNet(0.5, l1_ratio=0.25), ElasticNet(0.0, l1_ratio=0.5)]
    stacked = [torch.randn(len(members), 5, 3, dtype=torch.float64), torch.randn(4, 2, 3, 3, 3).double()]
    for w in stacked:
        w[0, 0] = 0.0  # sign(0) = 0
        w.grad = torch.randn_like(w)
    expected = []
    for k, regularizer in enumerate(members):
        slices = [w.detach()[k].clone() for w in stacked]
        for s, w in zip(slices, stacked, strict=True):
            s.grad = w.grad[k].clone()
        regularizer.add_gradient(slices)
        expected.append([s.grad for s in slices])
    l1 = torch.tensor([r.strength * r.l1_ratio for r in members], dtype=torch.float64)
    l2 = torch.tensor([r.strength * (1 - r.l1_ratio) for r in members], dtype=torch.float64)
    add_elastic_gradient(stacked, l1, l2)
    for k in range(len(members)):
        for w, grad in zip(stacked, expected[k], strict=True):
            torch.testing.assert_close(w.grad[k], grad, rtol=1e-15, atol=1e-15)
