"""Batches of a stack: each member's batch, drawn as its sequential run draws it, stacked
along the member axis."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from reglab.data.batches import InMemoryBatches


class StackedBatches:
    """``(x, y)`` of shape ``(K, b, ...)`` for the members still in the stack (``active``,
    positions into ``loaders``, set by the stack as members leave).

    Shuffled (training): every pass, each active member's own :class:`InMemoryBatches`
    draws its permutation (:meth:`InMemoryBatches.next_pass`), so its batches are its
    sequential run's; the rows are gathered from all members' tensors in one
    ``index_select``. Unshuffled (validation, test): consecutive slices of every member's
    split, ``batch_size`` rows at a time."""

    def __init__(self, loaders: list[InMemoryBatches], shuffle: bool) -> None:
        first = loaders[0]
        self.loaders = loaders
        self.shuffle = shuffle
        self.batch_size = first.batch_size
        self.repeat = first.repeat if shuffle else 1
        self.n = len(first.x)
        self.x = torch.stack([loader.x for loader in loaders])
        self.y = torch.stack([loader.y for loader in loaders])
        self.active = torch.arange(len(loaders))

    def __len__(self) -> int:
        return len(self.loaders[0]) if self.shuffle else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if not self.shuffle:
            x, y = self.x.index_select(0, self.active), self.y.index_select(0, self.active)
            for start in range(0, self.n, self.batch_size):
                yield x[:, start : start + self.batch_size], y[:, start : start + self.batch_size]
            return
        flat_x = self.x.reshape(-1, *self.x.shape[2:])
        flat_y = self.y.reshape(-1, *self.y.shape[2:])
        offsets = (self.active * self.n).unsqueeze(1)
        for _ in range(self.repeat):
            passes = [self.loaders[k].next_pass() for k in self.active.tolist()]
            for batch in zip(*passes, strict=True):
                rows = (torch.stack(batch) + offsets).reshape(-1)
                shape = (len(self.active), len(batch[0]))
                x = flat_x.index_select(0, rows).reshape(*shape, *self.x.shape[2:])
                yield x, flat_y.index_select(0, rows).reshape(*shape, *self.y.shape[2:])
