"""Unit tests for reglab.models: MLP block structure, dropout / batch-norm modes, LinearModel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reglab.dropout import SeededDropout
from reglab.errors import ConfigError
from reglab.models import ACTIVATIONS, MLP, LinearModel, make_activation

HIDDENS = [[7], [8, 6], [5, 4, 3]]


def expected_types(n_hidden: int, dropout: float, batchnorm: bool, act=nn.ReLU) -> list[type]:
    block = [nn.Linear] + ([nn.BatchNorm1d] if batchnorm else []) + [act]
    block += [SeededDropout] if dropout > 0 else []
    return block * n_hidden + [nn.Linear]


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("hidden", HIDDENS, ids=str)
@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_mlp_layer_structure(hidden, dropout, batchnorm):
    model = MLP(10, 3, hidden=hidden, dropout=dropout, batchnorm=batchnorm)
    layers = list(model)
    assert [type(m) for m in layers] == expected_types(len(hidden), dropout, batchnorm)

    dropouts = [m for m in layers if isinstance(m, SeededDropout)]
    bns = [m for m in layers if isinstance(m, nn.BatchNorm1d)]
    assert len(dropouts) == (len(hidden) if dropout > 0 else 0)
    assert len(bns) == (len(hidden) if batchnorm else 0)
    assert all(float(d.p) == pytest.approx(dropout) and not d.channels for d in dropouts)

    linears = [m for m in layers if isinstance(m, nn.Linear)]
    widths = [10, *hidden, 3]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip(widths[:-1], widths[1:], strict=True)
    )
    assert all(m.bias is not None for m in linears)  # bias kept even before batch norm
    assert [m.num_features for m in bns] == (list(hidden) if batchnorm else [])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_is_placed_in_every_block(name):
    model = MLP(4, 2, hidden=[3, 3], activation=name, dropout=0.1, batchnorm=True)
    assert [type(m) for m in model] == expected_types(2, 0.1, True, act=ACTIVATIONS[name])
    assert isinstance(make_activation(name), ACTIVATIONS[name])


def test_unknown_activation_raises():
    with pytest.raises(ConfigError, match=r"model.activation='swishy' is not allowed: must be one of elu"):
        make_activation("swishy")
    with pytest.raises(ValueError, match="relu"):
        MLP(4, 2, hidden=[3], activation="swishy")


@pytest.mark.parametrize("hidden", [[], [0], [4, 0], [4, -2]], ids=str)
def test_invalid_hidden_raises(hidden):
    with pytest.raises(ValueError, match="hidden"):
        MLP(4, 2, hidden=hidden)


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5])
def test_invalid_dropout_raises(dropout):
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 2, hidden=[3], dropout=dropout)


# --------------------------------------------------------------------------- eval / train modes


def _warm_batchnorm(model: MLP, steps: int = 3) -> None:
    """A few train-mode passes so running statistics differ from their (0, 1) defaults."""
    gen = torch.Generator().manual_seed(11)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(16, model[0].in_features, generator=gen) * 3 + 1)


def _copy_without_dropout(model: MLP, hidden, batchnorm: bool) -> MLP:
    plain = MLP(model[0].in_features, model[-1].out_features, hidden=hidden, batchnorm=batchnorm)
    source = list(model.state_dict().values())
    target = plain.state_dict()
    assert len(source) == len(target)  # dropout holds no state
    plain.load_state_dict(dict(zip(target.keys(), source, strict=True)))
    return plain


@pytest.mark.parametrize("batchnorm", [False, True])
def test_eval_mode_disables_dropout(batchnorm):
    torch.manual_seed(0)
    hidden = [32, 16]
    model = MLP(6, 4, hidden=hidden, dropout=0.5, batchnorm=batchnorm)
    _warm_batchnorm(model)
    model.eval()
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first, second = model(x), model(x)
        plain = _copy_without_dropout(model, hidden, batchnorm).eval()
        reference = plain(x)
    assert torch.equal(first, second)
    assert torch.equal(first, reference)


def test_train_mode_dropout_changes_outputs():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[64, 64], dropout=0.5).train()
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first, second = model(x), model(x)
        model.eval()
        evaluated = model(x)
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, evaluated)


def test_train_mode_without_dropout_is_deterministic():
    torch.manual_seed(0)
    model = MLP(6, 4, hidden=[64], dropout=0.0).train()
    x = torch.randn(10, 6)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_eval_mode_batchnorm_uses_running_statistics():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=[12, 8], batchnorm=True)
    _warm_batchnorm(model)
    bn = model[1]
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    model.eval()
    gen = torch.Generator().manual_seed(3)
    batch = torch.randn(9, 5, generator=gen)
    other = torch.cat([batch[:1], 10 * torch.randn(6, 5, generator=gen) - 4])
    with torch.no_grad():
        alone = model(batch[:1])
        in_batch = model(batch)[:1]
        in_other_batch = model(other)[:1]
        # by hand: first block with running statistics
        h = model[0](batch[:1])
        h = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        assert torch.allclose(model[2](model[1](model[0](batch[:1]))), h.relu(), atol=1e-6)
    torch.testing.assert_close(in_batch, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(in_other_batch, alone, rtol=1e-5, atol=1e-6)

    # in train mode the same sample's output does depend on the rest of the batch
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(batch)[:1], model(other)[:1], atol=1e-3)


def test_eval_mode_does_not_update_running_statistics():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=[4], batchnorm=True)
    _warm_batchnorm(model)
    mean, var = model[1].running_mean.clone(), model[1].running_var.clone()
    model.eval()
    with torch.no_grad():
        model(torch.randn(8, 5) * 5)
    assert torch.equal(model[1].running_mean, mean)
    assert torch.equal(model[1].running_var, var)


# --------------------------------------------------------------------------- shapes / flattening


@pytest.mark.parametrize("batch", [1, 4])
def test_linear_model_flattens_input(batch):
    torch.manual_seed(0)
    model = LinearModel(6, 5)
    x = torch.randn(batch, 2, 3)
    out = model(x)
    assert out.shape == (batch, 5)
    expected = x.reshape(batch, 6) @ model.weight.T + model.bias
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_linear_model_is_a_single_linear_layer():
    model = LinearModel(6, 5)
    assert isinstance(model, nn.Linear)
    assert [n for n, _ in model.named_parameters()] == ["weight", "bias"]
    assert tuple(model.weight.shape) == (5, 6)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_mlp_output_shape_and_flattening(batchnorm, dropout):
    torch.manual_seed(0)
    model = MLP(12, 7, hidden=[8, 5], dropout=dropout, batchnorm=batchnorm).eval()
    x = torch.randn(6, 3, 4)
    with torch.no_grad():
        out = model(x)
        flat = model(x.reshape(6, 12))
    assert out.shape == (6, 7)
    assert torch.equal(out, flat)
