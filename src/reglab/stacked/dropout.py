"""Dropout whose rate is a buffer: in a stacked model every member has its own rate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d)


class MemberDropout(nn.Module):
    """``x * keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` drawn per element, or per
    channel (``channels=True``: the ``Dropout1d`` / ``Dropout2d`` of conv blocks); identity
    in evaluation mode, and for ``p = 0``. The rate ``p`` is a buffer, so a stacked model
    (:func:`torch.func.vmap` over its members) gives each member its own."""

    def __init__(self, channels: bool) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("p", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        shape_of = x[(slice(None), slice(None), *[slice(0, 1)] * (x.ndim - 2))] if self.channels else x
        keep = torch.rand_like(shape_of) >= self.p
        return x * keep / (1 - self.p)


def replace_dropouts(model: nn.Module) -> list[str]:
    """Swap every dropout module of ``model`` for a :class:`MemberDropout`; returns the
    names of their ``p`` buffers."""
    names = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, DROPOUTS):
                setattr(parent, child_name, MemberDropout(channels=type(child) is not nn.Dropout))
                names.append(f"{parent_name}.{child_name}.p".lstrip("."))
    return names
