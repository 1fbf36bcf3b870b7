"""reglab.models.ConvNet (conf/model/cnn1d.yaml, convnet.yaml): shapes and toggled layers."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from reglab.config import compose
from reglab.dropout import SeededDropout
from reglab.models import ConvNet
from reglab.regularizers import select_weights

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def count(model: nn.Module, kinds) -> dict[type, int]:
    counts: dict[type, int] = {}
    for module in model.modules():
        if type(module) in kinds:
            counts[type(module)] = counts.get(type(module), 0) + 1
    return counts


def from_config(option: str, shape: list[int], out: int = 10, **overrides) -> nn.Module:
    args = [f"model={option}", *(f"{k}={v}" for k, v in overrides.items())]
    cfg = compose(args)
    n = 1
    for s in shape:
        n *= s
    return instantiate(cfg.model, in_features=n, out_features=out, input_shape=shape)


@pytest.mark.parametrize(
    "option,shape",
    [
        ("cnn1d", [1, 40]),
        ("cnn1d", [40]),
        ("cnn1d", [3, 17]),
        ("cnn1d", [1, 1]),
        ("convnet", [1, 28, 28]),
        ("convnet", [3, 32, 32]),
        ("convnet", [28, 28]),
        ("convnet", [1, 5, 7]),
        ("convnet", [2, 1, 1]),
    ],
)
def test_output_shape_from_flat_or_shaped_input(option, shape):
    model = from_config(option, shape, out=7)
    n = 1
    for s in shape:
        n *= s
    torch.manual_seed(0)
    flat = torch.randn(5, n)
    model.eval()
    out = model(flat)
    assert out.shape == (5, 7)
    torch.testing.assert_close(model(flat.reshape(5, *shape)), out)  # either layout


@pytest.mark.parametrize("option,dims", [("cnn1d", 1), ("convnet", 2)])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_dropout_and_batchnorm_layers_exactly_when_toggled(option, dims, dropout, batchnorm):
    shape = [1, 40] if dims == 1 else [1, 28, 28]
    model = from_config(option, shape, dropout=dropout, batchnorm=str(batchnorm).lower())
    n_blocks = sum(isinstance(m, nn.Conv1d | nn.Conv2d) for m in model.features)
    n_hidden = sum(isinstance(m, nn.Linear) for m in model.head) - 1
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    norms = count(model, NORMS)
    dropouts = [m for m in model.modules() if isinstance(m, SeededDropout)]
    if dropout:
        assert sum(m.channels for m in dropouts) == n_blocks  # channel dropout after each conv block
        assert sum(not m.channels for m in dropouts) == n_hidden + 1
        assert isinstance(model.head[-2], SeededDropout) and float(model.head[-2].p) == pytest.approx(dropout)
        assert all(float(m.p) == pytest.approx(dropout) for m in dropouts)
    else:
        assert dropouts == []
    if batchnorm:
        conv_norms = sum(isinstance(m, norm) for m in model.features)
        assert conv_norms == n_blocks
        assert sum(isinstance(m, nn.BatchNorm1d) for m in model.head) == n_hidden
    else:
        assert norms == {}


def test_default_architectures():
    cnn = from_config("cnn1d", [1, 40])
    convs = [m for m in cnn.features if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 64, 64]
    assert all(c.kernel_size == (5,) for c in convs)
    assert cnn.feature_shape == (64, 5)  # stride 2: 40 -> 20 -> 10 -> 5
    net = from_config("convnet", [1, 28, 28])
    assert [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)] == [32, 64]
    assert net.feature_shape == (64, 7, 7)  # two 2x2 max pools


def test_conv_kernels_are_penalized_and_batchnorm_is_not():
    model = ConvNet(784, 10, input_shape=[1, 28, 28], batchnorm=True)
    selected = {id(p) for p in select_weights(model)}
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            assert id(module.weight) in selected and id(module.bias) not in selected
        if isinstance(module, NORMS):
            assert not any(id(p) in selected for p in module.parameters())


def test_flat_shapes_are_read_as_one_channel():
    assert ConvNet(40, 3, input_shape=[40], dims=1).input_shape == (1, 40)
    assert ConvNet(64, 3, input_shape=[64]).input_shape == (1, 8, 8)  # digits: 8 x 8 images
    assert ConvNet(784, 3).input_shape == (1, 28, 28)  # no input_shape: from in_features
    assert ConvNet(784, 3, input_shape=[28, 28]).input_shape == (1, 28, 28)
    assert ConvNet(30, 3, dims=1).input_shape == (1, 30)


def test_global_pool_and_no_hidden_layer():
    model = ConvNet(3 * 32 * 32, 10, input_shape=[3, 32, 32], hidden=[], global_pool=True)
    assert [type(m) for m in model.head] == [nn.Linear]
    assert model.head[0].in_features == 64
    assert model(torch.randn(2, 3 * 32 * 32)).shape == (2, 10)


def test_training_mode_batchnorm_and_dropout_are_active_and_eval_mode_is_not():
    torch.manual_seed(0)
    model = ConvNet(40, 10, input_shape=[1, 40], dims=1, dropout=0.5, batchnorm=True)
    norms = [m for m in model.modules() if isinstance(m, NORMS)]
    x = torch.randn(8, 40) * 3 + 1
    model.train()
    first = model(x)
    assert not torch.allclose(first, model(x))  # dropout draws a new mask each pass
    assert all(not torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    first.square().sum().backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    model.eval()
    statistics = [m.running_mean.clone() for m in norms]
    with torch.no_grad():
        evaluated = model(x)
        torch.testing.assert_close(model(x), evaluated, rtol=0, atol=0)  # no dropout
        torch.testing.assert_close(model(x[:1]), evaluated[:1])  # running statistics, not the batch's
    for m, before in zip(norms, statistics, strict=True):
        assert torch.equal(m.running_mean, before)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"input_shape": [50], "in_features": 50}, "square"),
        ({"input_shape": [1, 2, 28, 28]}, "input_shape"),
        ({"in_features": 100}, "does not match input_shape"),
        ({"dropout": 1.0}, "dropout"),
        ({"channels": []}, "channels"),
        ({"dims": 3}, "dims"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"in_features": 784, "out_features": 10, "input_shape": [1, 28, 28], **kwargs}
    with pytest.raises(ValueError, match=message):
        ConvNet(**args)
