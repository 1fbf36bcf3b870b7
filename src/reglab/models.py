"""Networks whose blocks toggle dropout and batch normalization.

Input and output sizes are not part of a model's config: the data module knows them
and the training entry point passes them as ``in_features`` / ``out_features``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

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
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; allowed: {sorted(ACTIVATIONS)}") from None


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
    ) -> None:
        if len(hidden) == 0 or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty list of positive sizes, got {list(hidden)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers.append(nn.Linear(width, int(size)))
            if batchnorm:
                layers.append(nn.BatchNorm1d(int(size)))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))


class LinearModel(nn.Linear):
    """No hidden layer: linear regression, or logistic / softmax regression with
    cross-entropy. The intercept (``bias``) is not penalized by default."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))
