"""Batches travel to spawned processes (``ddp_spawn``) and keep their order."""

from __future__ import annotations

import pickle

import torch

from reglab.data.batches import InMemoryBatches


def _orders(batches: InMemoryBatches) -> list[list[float]]:
    return [x[:, 0].tolist() for x, _ in batches]


def test_a_pickled_batcher_continues_the_same_sequence_of_epochs():
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    fresh, used = (
        InMemoryBatches(x, y, 4, shuffle=True, seed=3),
        InMemoryBatches(x, y, 4, shuffle=True, seed=3),
    )
    reference = [_orders(fresh) for _ in range(3)]
    assert reference[0] != reference[1]  # a new permutation each epoch
    copy = pickle.loads(pickle.dumps(used))  # before any epoch, as the Trainer sends it
    assert [_orders(copy) for _ in range(3)] == reference
    _orders(used)
    resumed = pickle.loads(pickle.dumps(used))  # after one epoch: the generator's state travels
    assert [_orders(resumed) for _ in range(2)] == reference[1:]
