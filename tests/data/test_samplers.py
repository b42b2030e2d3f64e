"""Which samples each rank reads: the global batch of N ranks is the batch of one process."""

import numpy as np
import pytest
import torch

from gpaco.data.tensor_loader import TensorLoader
from gpaco import distributed as gdist
from gpaco.data.samplers import ShardedBatchSampler, StridedSampler
from gpaco.train import parallel
from gpaco.errors import UserError


def _batches(sampler, local):
    idx = list(sampler)
    return [idx[i:i + local] for i in range(0, len(idx), local)]


@pytest.mark.parametrize("world", [2, 4])
def test_rank_slices_concatenate_to_the_one_process_batches(world):
    n, batch = 103, 16
    one = ShardedBatchSampler(n, batch, seed=3)
    one.set_epoch(5)
    shards = []
    for r in range(world):
        s = ShardedBatchSampler(n, batch // world, rank=r, world=world, seed=3)
        s.set_epoch(5)
        assert len(s) == (n // batch) * (batch // world)
        shards.append(_batches(s, batch // world))
    joined = [sum((shards[r][k] for r in range(world)), []) for k in range(n // batch)]
    assert joined == _batches(one, batch)
    assert len(set(sum(joined, []))) == (n // batch) * batch  # no repeats


def test_epochs_differ_and_repeat(monkeypatch):
    a, b = ShardedBatchSampler(50, 10, seed=0), ShardedBatchSampler(50, 10, seed=0)
    a.set_epoch(1), b.set_epoch(1)
    assert list(a) == list(b)
    b.set_epoch(2)
    assert list(a) != list(b)
    monkeypatch.setattr(gdist, "world_size", lambda: 3)
    with pytest.raises(UserError, match="divisible"):
        parallel.local_batch(10)
    assert parallel.local_batch(12) == 4


def test_eval_shards_cover_the_set_once():
    parts = [list(StridedSampler(11, rank=r, world=3)) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(11))


def _loader(rank=0, world=1, batch=4, shuffle=True, drop_last=True):
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1).repeat(3, axis=3)
    return TensorLoader(images, list(range(30)), batch_size=batch,
                           views=[lambda x, g: x.float()], shuffle=shuffle, drop_last=drop_last,
                           device="cpu", seed=7, rank=rank, world_size=world)


def test_loader_shards_like_the_sampler():
    one = [labels.tolist() for _, labels in _loader(batch=8)]
    ranks = [[labels.tolist() for _, labels in _loader(r, 2, batch=4)] for r in range(2)]
    assert len(_loader(0, 2, batch=4)) == len(one) == 3
    assert [a + b for a, b in zip(*ranks)] == one


def test_gpu_loader_eval_shards_cover_the_set_once():
    seen = []
    for r in range(3):
        loader = _loader(r, 3, batch=4, shuffle=False, drop_last=False)
        got = [labels.tolist() for _, labels in loader]
        assert len(got) == len(loader)
        seen += sum(got, [])
    assert sorted(seen) == list(range(30))
    with pytest.raises(UserError):
        _loader(2, 2)


def test_gpu_loader_on_one_process_is_unchanged():
    torch.manual_seed(0)
    a = [labels.tolist() for _, labels in _loader(batch=8)]
    b = [labels.tolist() for _, labels in _loader(0, 1, batch=8)]
    assert a == b and len(a) == 3


def test_sample_seeds_follow_the_global_position_on_any_process_count():
    from gpaco.data.samplers import ShardedBatchSampler
    from gpaco.data.seeded_samples import PositionSeededSampler

    def seeds(world):
        out = {}
        for rank in range(world):
            sampler = PositionSeededSampler(
                ShardedBatchSampler(40, 8 // world, rank=rank, world=world, seed=3), seed=3)
            sampler.set_epoch(2)
            out.update({index: seed for seed, index in sampler})
        return out

    assert seeds(1) == seeds(2) == seeds(4)  # each sample: one seed, whoever reads it
    one = PositionSeededSampler(ShardedBatchSampler(40, 8, seed=3), seed=3)
    full = list(one)
    one.start_at(16)
    assert list(one) == full[16:] and list(one) == full  # start_at holds for one pass only
