"""Networks whose blocks toggle dropout and batch normalization.

Input and output sizes are not part of a model's config: the data module knows them
and the training entry point passes them to every model as ``in_features`` (features
per sample, flattened), ``input_shape`` (the per-sample shape, e.g. ``[1, 28, 28]``)
and ``out_features``. Fully connected models flatten their input and ignore the shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from reglab import checks
from reglab.dropout import SeededDropout
from reglab.errors import ConfigError
from reglab.knobs import BATCHNORM, DROPOUT

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[checks.choice("model.activation", name, sorted(ACTIVATIONS))]()


class MLP(nn.Sequential):
    """Multi-layer perceptron.

    Each hidden block is ``Linear -> [BatchNorm1d] -> activation -> [Dropout(p)]``; batch
    norm is present when ``batchnorm`` is true, dropout when ``dropout > 0``. The output
    layer is a plain ``Linear``. The Linear before a batch norm keeps its bias so that
    toggling batch norm changes one thing only.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        hidden = checks.sizes("model.hidden", hidden)
        dropout = DROPOUT.check("model.dropout", dropout)
        batchnorm = BATCHNORM.check("model.batchnorm", batchnorm)
        make_activation(activation)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers.append(nn.Linear(width, int(size)))
            if batchnorm:
                layers.append(nn.BatchNorm1d(int(size)))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(SeededDropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))


class LinearModel(nn.Linear):
    """No hidden layer: linear regression, or logistic / softmax regression with
    cross-entropy. The intercept (``bias``) is not penalized by default."""

    def __init__(self, in_features: int, out_features: int, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))


def conv_input_shape(in_features: int, input_shape: Sequence[int] | None, dims: int) -> tuple:
    """``(C, *spatial)`` for a ``dims``-D conv net from a per-sample shape.

    ``(C, L)`` / ``(C, H, W)`` are kept; a shape without the channel axis gets one channel;
    a flat shape ``(F,)`` (tabular data, or no ``input_shape`` at all: ``(in_features,)``)
    is one channel of length F for a 1-D net, and a square F = S * S image for a 2-D net
    (e.g. the 64 features of ``digits`` as 8 x 8).
    """
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else (in_features,)))
    if len(shape) == 1 and dims == 2:
        side = math.isqrt(shape[0])
        if side * side == shape[0]:
            shape = (side, side)
    if len(shape) == dims:
        shape = (1, *shape)
    if len(shape) != dims + 1 or min(shape) < 1:
        raise ConfigError(
            f"a {dims}-D ConvNet needs input_shape of {dims + 1} dimensions (channels first)"
            f"{' or a square number of features' if dims == 2 else ''}, got {list(shape)}"
        )
    if math.prod(shape) != in_features:
        raise ConfigError(f"in_features={in_features} does not match input_shape {list(shape)}")
    return shape


class ConvNet(nn.Module):
    """Small convolutional network for signals (``dims=1``) or images (``dims=2``).

    ``features``, one block per entry of ``channels``::

        Conv(kernel_size, stride, padding=kernel_size // 2) -> [BatchNorm] -> activation
            -> [MaxPool(pool)] -> [Dropout1d / Dropout2d(p)]

    (batch norm when ``batchnorm``; channel dropout when ``dropout > 0``; pooling when
    ``pool > 1`` and the map is at least ``pool`` wide). Then the maps are flattened, or
    averaged over their positions with ``global_pool``, and the ``head`` follows::

        per hidden size: [Dropout(p)] -> Linear -> [BatchNorm1d] -> activation
        then:            [Dropout(p)] -> Linear(out_features)

    ``input_shape`` is the per-sample shape, channels first (``(C, L)`` or ``(C, H, W)``;
    :func:`conv_input_shape` reads shapes without a channel axis, and flat ones). The
    defaults are a 2-D net for 28 x 28 / 32 x 32 images; ``conf/model/cnn1d.yaml`` sets
    the 1-D one for MNIST-1D.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        input_shape: Sequence[int] | None = None,
        dims: int = 2,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        stride: int = 1,
        pool: int = 2,
        hidden: Sequence[int] = (128,),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        global_pool: bool = False,
    ) -> None:
        super().__init__()
        dims = checks.choice("model.dims", dims, (1, 2))
        channels = checks.sizes("model.channels", channels)
        hidden = checks.sizes("model.hidden", hidden, allow_empty=True)
        dropout = DROPOUT.check("model.dropout", dropout)
        batchnorm = BATCHNORM.check("model.batchnorm", batchnorm)
        global_pool = checks.flag("model.global_pool", global_pool)
        for key, value in (("kernel_size", kernel_size), ("stride", stride), ("pool", pool)):
            checks.integer(f"model.{key}", value, low=1)
        make_activation(activation)
        self.input_shape = conv_input_shape(in_features, input_shape, dims)
        self.features, self.feature_shape = _conv_blocks(
            self.input_shape, channels, kernel_size, stride, pool, activation, dropout, batchnorm
        )
        self.global_pool = global_pool
        width, *size = self.feature_shape
        flat = width if global_pool else width * math.prod(size)
        self.head = _dense_head(flat, out_features, hidden, activation, dropout, batchnorm)

    def forward(self, x: Tensor) -> Tensor:
        maps = self.features(x.reshape(len(x), *self.input_shape))
        return self.head(maps.flatten(2).mean(dim=2) if self.global_pool else maps.flatten(1))


def _conv_blocks(
    input_shape: tuple, channels, kernel_size, stride, pool, activation, dropout, batchnorm
) -> tuple[nn.Sequential, tuple]:
    """The convolutional blocks of :class:`ConvNet` and the shape of the maps they give."""
    dims = len(input_shape) - 1
    conv, norm, max_pool = (
        (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
    )
    blocks: list[nn.Module] = []
    width, size = input_shape[0], list(input_shape[1:])
    padding = kernel_size // 2
    for c in channels:
        blocks.append(conv(width, c, kernel_size, stride=stride, padding=padding))
        size = [(s + 2 * padding - kernel_size) // stride + 1 for s in size]
        if batchnorm:
            blocks.append(norm(c))
        blocks.append(make_activation(activation))
        if pool > 1 and min(size) >= pool:
            blocks.append(max_pool(pool))
            size = [s // pool for s in size]
        if dropout > 0:
            blocks.append(SeededDropout(dropout, channels=True))
        width = c
    return nn.Sequential(*blocks), (width, *size)


def _dense_head(flat, out_features, hidden, activation, dropout, batchnorm) -> nn.Sequential:
    """The fully connected head of :class:`ConvNet` (see its docstring)."""
    layers: list[nn.Module] = []
    for h in hidden:
        if dropout > 0:
            layers.append(SeededDropout(dropout))
        layers.append(nn.Linear(flat, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(make_activation(activation))
        flat = h
    if dropout > 0:
        layers.append(SeededDropout(dropout))
    layers.append(nn.Linear(flat, out_features))
    return nn.Sequential(*layers)


class TargetScale(nn.Module):
    """``net(x) * std + mean``: a network fitted to standardized regression targets that
    predicts in the data's own units (``mean`` and ``std`` of the training targets, fixed
    buffers, not trained or penalized). Built by the pipeline for
    ``data.standardize_target=true``; ``net`` is the configured model."""

    def __init__(self, net: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.reshape(1, -1).clone())
        self.register_buffer("std", std.reshape(1, -1).clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) * self.std + self.mean
