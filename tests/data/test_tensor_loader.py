"""TensorLoader: coverage of each epoch, determinism and resume, evaluation mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gpaco.data.batched_views import build_batched_transform
from gpaco.data.tensor_loader import TensorLoader
from gpaco.errors import UserError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def data(n: int = 103, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Image i has every pixel equal to i % 256 in channel 0, so batches reveal their indices."""
    imgs = np.zeros((n, size, size, 3), dtype=np.uint8)
    imgs[..., 0] = (np.arange(n) % 256)[:, None, None]
    imgs[..., 1] = 7
    return imgs, np.arange(n)


def identity(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return batch.float()


def noisy(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return batch.float() + torch.rand(batch.shape, generator=generator, device=batch.device)


@pytest.mark.parametrize("device", DEVICES)
def test_each_index_once_per_epoch(device: str) -> None:
    imgs, targets = data()
    loader = TensorLoader(imgs, targets, batch_size=10, views=[identity, identity], device=device)
    assert len(loader) == 10
    seen = []
    for views, labels in loader:
        assert len(views) == 2 and views[0].shape == (10, 3, 8, 8)
        assert labels.device.type == device and labels.dtype == torch.long
        assert torch.equal(views[0][:, 0, 0, 0].long(), labels % 256)  # images stay with labels
        seen += labels.tolist()
    assert len(seen) == len(set(seen)) == 100  # drop_last: 3 dropped
    assert seen != sorted(seen)


def test_epochs_differ_and_set_epoch_resumes_exactly() -> None:
    imgs, targets = data()
    loader = TensorLoader(imgs, targets, batch_size=16, views=[noisy], device="cpu", seed=3)
    epoch0 = [(v[0].clone(), y.clone()) for v, y in loader]
    epoch1 = [(v[0].clone(), y.clone()) for v, y in loader]  # the epoch advances by itself
    assert loader.epoch == 2
    assert not torch.equal(epoch0[0][1], epoch1[0][1])
    loader.set_epoch(1)
    again = [(v[0].clone(), y.clone()) for v, y in loader]
    for (va, ya), (vb, yb) in zip(epoch1, again):
        assert torch.equal(ya, yb) and torch.equal(va, vb)  # same order and same augmentation
    fresh = TensorLoader(imgs, targets, batch_size=16, views=[noisy], device="cpu", seed=3)
    fresh.set_epoch(1)
    assert torch.equal(next(iter(fresh))[0][0], epoch1[0][0])
    other_seed = TensorLoader(imgs, targets, batch_size=16, views=[noisy], device="cpu", seed=4)
    assert not torch.equal(next(iter(other_seed))[1], epoch0[0][1])


def test_eval_mode_natural_order_keeps_last_batch() -> None:
    imgs, targets = data(n=25)
    loader = TensorLoader(
        imgs, targets, batch_size=10, views=identity, shuffle=False, drop_last=False, device="cpu"
    )
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [10, 10, 5]
    assert torch.cat([y for _, y in batches]).tolist() == list(range(25))
    assert all(len(v) == 1 for v, _ in batches)


def test_with_gpu_transforms_and_from_dataset() -> None:
    rng = np.random.default_rng(0)

    class Fake:
        data = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
        targets = list(range(40))

    views = [build_batched_transform("cifar_regular"), build_batched_transform("cifar_sim")]
    loader = TensorLoader.from_dataset(Fake(), batch_size=8, views=views, device="cpu")
    assert loader.images.shape == (40, 3, 32, 32) and loader.images.dtype == torch.uint8
    (v1, v2), y = next(iter(loader))
    assert v1.shape == v2.shape == (8, 3, 32, 32) and v1.dtype == torch.float32
    assert not torch.equal(v1, v2)

    class OnDisk:
        data = ["a.jpg", "b.jpg"]
        targets = [0, 1]

    with pytest.raises(UserError):
        TensorLoader.from_dataset(OnDisk(), batch_size=2, views=views, device="cpu")


def test_bad_inputs() -> None:
    imgs, targets = data(n=10)
    with pytest.raises(UserError):
        TensorLoader(imgs.astype(np.float32), targets, batch_size=2, views=[identity], device="cpu")
    with pytest.raises(UserError):
        TensorLoader(imgs, targets[:5], batch_size=2, views=[identity], device="cpu")
    with pytest.raises(UserError):
        TensorLoader(imgs, targets, batch_size=0, views=[identity], device="cpu")
    with pytest.raises(UserError):
        TensorLoader(imgs, targets, batch_size=2, views=[], device="cpu")
