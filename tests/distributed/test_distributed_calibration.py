"""Two gloo processes, each with half of the samples: the reduced calibration is the whole set's."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gpaco.evaluation.calibration import CalibrationCounter, calibration
from gpaco.tasks.classification.metrics import shot_groups

GROUPS = shot_groups([500, 300, 50, 30, 5])


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(301, 5, generator=g) * 3, torch.randint(0, 5, (301,), generator=g)


def _worker(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    logits, labels = _data()
    counter = CalibrationCounter(5)
    shard = slice(0, 150) if rank == 0 else slice(150, None)  # unequal shards
    counter.update(logits[shard], labels[shard])
    counter.reduce()
    if rank == 0:
        torch.save(counter.result(GROUPS).metrics, out)
    dist.destroy_process_group()


def test_reduce_gathers_every_rank(tmp_path):
    out = str(tmp_path / "metrics.pt")
    mp.spawn(_worker, args=(f"file://{tmp_path / 'store'}", out), nprocs=2)
    reduced = torch.load(out)
    whole = calibration(*_data(), GROUPS).metrics
    for scope, metrics in whole.items():
        for key, value in (metrics or {}).items():
            assert abs(reduced[scope][key] - value) < 1e-9, (scope, key)
