"""Dropout whose masks are a function of the run's own seed and its position in training.

A mask element is kept when ``u >= p``, with ``u`` in ``[0, 1)`` a counter-based hash of
``(seed, layer, draw, element)``: ``seed`` is the run's ``seed`` (the buffer ``key``), ``layer``
numbers the model's dropout layers in order, ``draw`` counts the layer's training forwards (one
per optimizer step) and ``element`` is the position in the mask. No global random state is
read, so a configuration draws the same masks alone, in any stack, in any order of jobs, after a
resume and on any executor; the one-run and the stacked engine call the same layer (under
:func:`torch.func.vmap` the ``key`` and ``p`` buffers are each member's own).

The hash is SplitMix64's (Steele, Lea & Flood 2014): the ``element``-th output of the stream
whose state starts at ``s = mix(mix(mix(seed) + layer * G) + draw * G)``, i.e.
``u = mix(s + (element + 1) * G) >> 11`` scaled to ``[0, 1)`` by ``2^-53``, with
``G = 0x9E3779B97F4A7C15`` and ``mix(z)``: ``z = (z ^ z >>> 30) * 0xBF58476D1CE4E5B9;
z = (z ^ z >>> 27) * 0x94D049BB133111EB; z ^ z >>> 31``, all mod 2^64 (int64 tensors, whose
products wrap; ``>>>`` is the logical shift). Eight tensor operations per mask element.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _int64(value: int) -> int:
    """``value mod 2^64`` as a signed 64-bit integer (two's complement)."""
    value %= 2**64
    return value - 2**64 if value >= 2**63 else value


GOLDEN = 0x9E3779B97F4A7C15
MIX1, MIX2 = _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)


def _logical_shift(z: Tensor, bits: int) -> Tensor:
    """``z >>> bits`` of an int64 tensor (``>>`` shifts in the sign bit)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def mix64(z: Tensor) -> Tensor:
    """SplitMix64's output function of int64 tensors (mod 2^64)."""
    z = (z ^ _logical_shift(z, 30)) * MIX1
    z = (z ^ _logical_shift(z, 27)) * MIX2
    return z ^ _logical_shift(z, 31)


def uniforms(key: Tensor, layer: int, draw: int, shape: tuple[int, ...]) -> Tensor:
    """``u`` in ``[0, 1)`` (float64) of the given shape for ``(key, layer, draw)``."""
    stream = mix64(mix64(mix64(key) + _int64(layer * GOLDEN)) + _int64(draw * GOLDEN))
    element = torch.arange(1, math.prod(shape) + 1, device=key.device, dtype=torch.int64)
    hashed = mix64(stream + element * _int64(GOLDEN))
    return (_logical_shift(hashed, 11).to(torch.float64) * 2.0**-53).reshape(shape)


class SeededDropout(nn.Module):
    """``x * keep / (1 - p)``, ``keep = u >= p`` per element, or per channel
    (``channels=True``: the ``Dropout1d`` / ``Dropout2d`` of conv blocks), with ``u`` from
    :func:`uniforms`; identity in evaluation mode. ``p`` and ``key`` are buffers (not saved in
    the state dict), so a stacked model gives each member its own rate and seed; ``layer`` is
    set by :func:`key_dropouts`."""

    def __init__(self, p: float, channels: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.layer = 0
        self.draws = 0
        self.register_buffer("p", torch.tensor(float(p)), persistent=False)
        self.register_buffer("key", torch.zeros((), dtype=torch.int64), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        shape = (*x.shape[:2], *[1] * (x.ndim - 2)) if self.channels else tuple(x.shape)
        keep = uniforms(self.key, self.layer, self.draws, shape) >= self.p
        self.draws += 1
        return x * keep.to(x.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={float(self.p):g}, channels={self.channels}, layer={self.layer}"


def key_dropouts(model: nn.Module, seed: int) -> list[str]:
    """Number ``model``'s :class:`SeededDropout` layers in order and key them with ``seed``;
    returns the names of their buffers (``<layer>.p``, ``<layer>.key``)."""
    names = []
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, SeededDropout)]
    for number, (name, layer) in enumerate(layers):
        layer.layer, layer.draws = number, 0
        layer.key.fill_(int(seed))
        names += [f"{name}.p".lstrip("."), f"{name}.key".lstrip(".")]
    return names
