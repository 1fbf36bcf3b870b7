"""Weight penalties added to the data loss.

Convention (scikit-learn / glmnet): for the selected weights ``w``::

    penalty(w) = strength * (l1_ratio * ||w||_1 + 0.5 * (1 - l1_ratio) * ||w||_2^2)

``L1`` is ``l1_ratio = 1``; ``L2`` is ``l1_ratio = 0``, whose gradient ``strength * w``
equals PyTorch SGD's ``weight_decay = strength``.

Selection (the rule of timm and nanoGPT): weight matrices and convolution kernels
(``ndim >= 2``) are penalized; biases only when ``include_bias`` is set; normalization
parameters (batch-norm scale and shift) never.

Writing your own regularizer: subclass :class:`Regularizer`, implement
:meth:`Regularizer.penalty` and point ``regularizer._target_`` at the class. Its
constructor receives the other keys of the ``regularizer`` config.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def select_weights(model: nn.Module, include_bias: bool = False) -> list[nn.Parameter]:
    """Parameters a penalty applies to: ``ndim >= 2`` tensors, plus layer biases on request.

    Parameters of normalization layers are never selected.
    """
    selected = []
    for module in model.modules():
        if isinstance(module, _NORM_LAYERS):
            continue
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if param.ndim >= 2 or (include_bias and name == "bias"):
                selected.append(param)
    return selected


class Regularizer:
    """A penalty on a list of weight tensors.

    Subclasses implement :meth:`penalty`; the training module calls it once per step
    with the tensors chosen by :meth:`select` and adds the result to the data loss.
    """

    def __init__(self, include_bias: bool = False) -> None:
        self.include_bias = include_bias

    def select(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters of ``model`` this regularizer sees (see :func:`select_weights`)."""
        return select_weights(model, include_bias=self.include_bias)

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        """Scalar penalty for ``weights``; must be differentiable where it is non-zero."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class NoPenalty(Regularizer):
    """The baseline: ``penalty(w) = 0``."""

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        return torch.zeros((), device=weights[0].device if weights else None)


class ElasticNet(Regularizer):
    """``strength * (l1_ratio * ||w||_1 + 0.5 * (1 - l1_ratio) * ||w||_2^2)``.

    Both norms are taken over all selected tensors in one fused pass
    (``torch._foreach_norm``), not a Python loop over elements. The L1 gradient is the
    sub-gradient ``sign(w)`` (0 at 0), so plain gradient descent shrinks weights but
    rarely makes them exactly zero.
    """

    def __init__(self, strength: float, l1_ratio: float = 0.5, include_bias: bool = False) -> None:
        super().__init__(include_bias)
        if strength < 0:
            raise ValueError(f"strength must be >= 0, got {strength}")
        if not 0.0 <= l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
        self.strength = float(strength)
        self.l1_ratio = float(l1_ratio)

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        if not weights:
            return torch.zeros(())
        total = weights[0].new_zeros(())
        if self.l1_ratio > 0:
            l1 = torch.stack(torch._foreach_norm(weights, 1)).sum()
            total = total + self.l1_ratio * l1
        if self.l1_ratio < 1:
            squared_l2 = torch.stack(torch._foreach_norm(weights, 2)).square().sum()
            total = total + 0.5 * (1.0 - self.l1_ratio) * squared_l2
        return self.strength * total


class L1(ElasticNet):
    """Lasso penalty ``strength * ||w||_1`` (elastic net with ``l1_ratio = 1``)."""

    def __init__(self, strength: float, include_bias: bool = False) -> None:
        super().__init__(strength, l1_ratio=1.0, include_bias=include_bias)


class L2(ElasticNet):
    """Ridge penalty ``0.5 * strength * ||w||_2^2`` (elastic net with ``l1_ratio = 0``)."""

    def __init__(self, strength: float, include_bias: bool = False) -> None:
        super().__init__(strength, l1_ratio=0.0, include_bias=include_bias)
