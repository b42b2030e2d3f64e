"""Image files on the batched path (gpaco.data.batched_files): the crops the workers cut, the
reproducible and resumable batches, the bad-file policy, the ImageNet views' statistics against
the per-sample path, and a run of an ImageNet recipe with data.batched_augment=true."""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from gpaco.cli import main
from gpaco.data import batched_views as V
from gpaco.data.batched_files import FileBatchLoader, batched_file_views
from gpaco.data.image_files import load_rgb_tensor
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.samplers import ShardedBatchSampler
from gpaco.data.seeded_samples import PositionSeededSampler, SeededSamples
from gpaco.data.transforms import build_transform
from gpaco.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def _folder(root: Path, counts: tuple[int, ...] = (10, 6, 4), size: tuple[int, int] = (45, 60),
            split: str = "train") -> Path:
    rng = np.random.default_rng(len(counts))
    for c, n in enumerate(counts):
        (root / split / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            small = rng.integers(0, 256, (size[0] // 5, size[1] // 5, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize(size[::-1], Image.BICUBIC)
            img.save(root / split / f"c{c}" / f"{i}.jpg", quality=90)
    return root


def _loader(ds, batch: int, workers: int, seed: int = 0) -> DataLoader:
    order = ShardedBatchSampler(len(ds), batch, seed=seed)
    return DataLoader(SeededSamples(ds), batch_size=batch, sampler=PositionSeededSampler(order, seed=seed),
                      num_workers=workers, drop_last=True)


def _batched(root: Path, names=("randcls", "sim"), workers: int = 0, size: int = 32,
             **kw) -> FileBatchLoader:
    crops, augment = batched_file_views(LongTailImageFolder(root, **kw), list(names), image_size=size)
    return FileBatchLoader(_loader(crops, 4, workers), augment, torch.device("cpu"))


def test_crops_are_the_per_sample_crop_under_the_same_seed(tmp_path: Path) -> None:
    files = LongTailImageFolder(_folder(tmp_path))
    crops, _ = batched_file_views(files, ["randcls", "cifar_regular"], image_size=24)
    torch.manual_seed(11)
    views, target = crops[3]
    img = load_rgb_tensor(files.data[3])
    torch.manual_seed(11)
    ref = v2.RandomResizedCrop(24, scale=(0.08, 1.0), antialias=True)(img)
    assert target == files.targets[3] and views[0].dtype == torch.uint8
    assert torch.equal(views[0], ref)
    assert views[1].shape == (3, 24, 24)  # a pad-crop view: resized, cropped on the device


def test_batches_do_not_depend_on_workers_and_resume_at_any_step(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    one = list(_batched(root, workers=0))
    two = list(_batched(root, workers=2))
    assert len(one) == 5 and all(v.shape == (4, 3, 32, 32) for v in one[0][0])
    for (va, la), (vb, lb) in zip(one, two):
        assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(va, vb))
    resumed = _batched(root)
    resumed.sampler.start_at(2 * 4)
    rest = list(resumed)
    assert len(rest) == 3
    for (va, la), (vb, lb) in zip(one[2:], rest):
        assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(va, vb))
    resumed.set_epoch(1)  # another epoch: other batches
    assert not torch.equal(next(iter(resumed))[0][0], one[0][0][0])


def test_bad_files_follow_on_bad_image(tmp_path: Path) -> None:
    root = _folder(tmp_path, counts=(4, 4))
    bad = root / "train" / "c0" / "0.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="cannot read image .*0.jpg"):
        list(_batched(root))
    with pytest.warns(UserWarning, match="skipping it"):
        batches = list(_batched(root, on_bad_image="skip"))
    assert sum(len(labels) for _, labels in batches) == 8


def _stats(views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-view (mean, std) of the normalised pixels."""
    flat = views.flatten(1)
    return flat.mean(1), flat.std(1)


def _same_distribution(a: torch.Tensor, b: torch.Tensor, tol: float = 0.15) -> bool:
    se = math.sqrt(a.var().item() / len(a) + b.var().item() / len(b))
    return abs(a.mean().item() - b.mean().item()) < 4 * se + 1e-3 and \
        abs(a.std().item() / b.std().item() - 1) < tol


@pytest.mark.parametrize("name", ["randcls", "sim", "randclsstack"])
def test_views_statistics_match_the_per_sample_path(tmp_path: Path, name: str) -> None:
    """The same images through both paths many times: per-view pixel mean and std agree in
    distribution (crop, flip, jitter, grey, blur, RandAugment together)."""
    root = _folder(tmp_path, counts=(8, 8), size=(48, 64))
    files = LongTailImageFolder(root)
    per_sample = build_transform(name, image_size=32)
    ours, theirs = [], []
    crops, augment = batched_file_views(files, [name], image_size=32)
    g = torch.Generator().manual_seed(0)
    for rep in range(25):
        torch.manual_seed(rep)
        random.seed(rep)  # timm's RandAugment draws from random and numpy
        np.random.seed(rep)
        batch = torch.stack([crops[i][0][0] for i in range(len(files))])
        ours.append(augment([batch], g)[0])
        theirs.append(torch.stack([per_sample(files._load(i)[0]) for i in range(len(files))]))
    (m1, s1), (m2, s2) = _stats(torch.cat(ours)), _stats(torch.cat(theirs))
    assert _same_distribution(m1, m2), (m1.mean(), m2.mean(), m1.std(), m2.std())
    assert _same_distribution(s1, s2), (s1.mean(), s2.mean(), s1.std(), s2.std())


def test_batched_views_of_the_imagenet_names() -> None:
    x = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    for name in V.IMAGENET_VIEWS:
        out = V.build_batched_transform(name, image_size=24)(x, torch.Generator().manual_seed(0))
        assert out.shape == (6, 3, 24, 24) and torch.isfinite(out).all()
    with pytest.raises(UserError, match="unknown batched transform"):
        V.host_crop("imagenet_test")


def test_imagenet_recipe_trains_with_batched_augment_on_files(tmp_path: Path, capsys) -> None:
    root = _folder(tmp_path / "data", counts=(8, 5, 3))
    _folder(tmp_path / "data", counts=(3, 3, 3), split="val")
    for split in ("train", "val"):
        lines = [f"{p.relative_to(root)} {p.parent.name[1:]}"
                 for p in sorted((root / split).rglob("*.jpg"))]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    args = ["train", "--recipe", "imagenet-lt-paco-r50", "data.dataset=split_file",
            f"data.root={root}", f"data.train_split={root / 'train.txt'}", "data.val_split=null",
            f"data.test_split={root / 'val.txt'}", "data.batched_augment=true",
            "data.image_size=32", "data.workers=1", "train.device=cpu", "epochs=1",
            "warmup_epochs=0", "batch_size=8", "model.backbone=resnet8", "model.queue_size=16",
            "model.ghost_bn=null", "output.progress=none", "output.tensorboard=false",
            "output.plots=false", f"output.dir={tmp_path / 'run'}"]
    assert main(args) == 0, capsys.readouterr().err
    assert "training paco on split_file (16 images, 3 classes)" in capsys.readouterr().out


@pytest.mark.parametrize("overrides, cuda, expected", [
    ([], True, True),  # image files, ImageNet views, a GPU: batched
    ([], False, False),  # the CPU: the per-sample path is faster
    (["train.device=cpu"], True, False),
    (["data.batched_augment=false"], True, False),  # off with one key
    (["data.views=[randcls,vit_ce_train]"], True, False),  # a view without a batched twin
])
def test_batched_augment_auto_is_on_where_it_is_faster(monkeypatch: pytest.MonkeyPatch,
                                                       overrides, cuda, expected) -> None:
    from gpaco.run import load_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = load_config("imagenet-lt-paco-r50", overrides=overrides)
    assert cfg.data.batched_augment is expected
    assert load_config("cifar100-lt-paco").data.batched_augment is False  # in memory: as set
