"""``data=mnist1d data.shuffle_seq=true``: the same samples with their 40 positions
permuted, one permutation for every sample (locality destroyed, content kept)."""

from __future__ import annotations

import torch
from hydra.utils import instantiate

from reglab.config import compose


def mnist1d(shuffle_seq: bool):
    data = instantiate(compose(["data=mnist1d", f"data.shuffle_seq={str(shuffle_seq).lower()}"]).data)
    data.setup("fit")
    return data


def test_shuffle_seq_permutes_the_positions_of_every_sample_the_same_way():
    plain, shuffled = mnist1d(False), mnist1d(True)
    assert plain.split_sizes() == shuffled.split_sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert shuffled.input_shape == (1, 40)
    x_plain = plain.tensors["train"][0].reshape(3600, 40)  # held flat, read as (1, 40)
    x_shuffled = shuffled.tensors["train"][0].reshape(3600, 40)
    # position j of the shuffled signals is position permutation[j] of the plain ones
    distance = torch.cdist(x_shuffled.T, x_plain.T)  # 40 x 40, each over all samples
    permutation = distance.argmin(dim=1)
    assert sorted(permutation.tolist()) == list(range(40))
    assert (permutation != torch.arange(40)).sum() > 30  # really shuffled
    for split in ("train", "val", "test"):
        (xp, yp), (xs, ys) = plain.tensors[split], shuffled.tensors[split]
        assert torch.equal(yp, ys), split  # same samples, same labels, same order
        xp, xs = xp.reshape(len(yp), 40), xs.reshape(len(ys), 40)
        torch.testing.assert_close(xs, xp[:, permutation], rtol=1e-5, atol=1e-5, msg=split)
        assert not torch.allclose(xs, xp, atol=0.1), split
