"""Image files (folders, split files) on the batched path.

The loader's workers decode each file with torchvision.io (the same bad-file policy as the
per-sample path, `data.on_bad_image`) and cut each view's crop as uint8 under the sample's
position seed (`seeded_samples`); the training device then runs the rest of every view on the
whole batch (`batched_views`), drawing from a generator seeded by the batch's position in the
epoch. Any worker count gives the same batches, and an epoch resumes at any step.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gpaco.data.batched_views import BatchedCompose, build_batched_transform, host_crop
from gpaco.data.image_files import FileDataset, load_rgb_tensor
from gpaco.data.seeded_samples import PositionSeededSampler, sample_seed
from gpaco.seeding import epoch_seed

# decorrelates a batch's augmentation stream from its first sample's crop stream
_BATCH_STREAM = 0x9E3779B9


class CroppedViews(Dataset):
    """`files[index]` decoded to uint8 and cropped once per view: item ([crop per view], target)."""

    def __init__(self, files: FileDataset, crops: Sequence[Callable[[Tensor], Tensor]]) -> None:
        self.files, self.crops = files, list(crops)
        self.targets, self.classes = files.targets, files.classes
        self.num_classes, self.class_counts = files.num_classes, files.class_counts

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[list[Tensor], int]:
        img, target = self.files._load(index, read=load_rgb_tensor)
        return [crop(img) for crop in self.crops], target


class ViewRests:
    """`augment(crops, generator)`: the rest of each view (after its crop) on its batch."""

    def __init__(self, views: Sequence[BatchedCompose]) -> None:
        self.views = list(views)

    def __call__(self, crops: Sequence[Tensor], generator: torch.Generator | None = None
                 ) -> list[Tensor]:
        return [view(c, generator) for view, c in zip(self.views, crops)]


def batched_file_views(files: FileDataset, names: Sequence[str], *,
                       image_size: int | None = None, **kwargs: Any
                       ) -> tuple[CroppedViews, ViewRests]:
    """(dataset of uint8 crops, augment) of views `names` over `files`. kwargs: mean, std,
    randaug_n, randaug_m, as `build_batched_transform`."""
    views = [build_batched_transform(n, crop=False, image_size=image_size, **kwargs)
             for n in names]
    crops = [host_crop(n, image_size) for n in names]
    return CroppedViews(files, crops), ViewRests(views)


class FileBatchLoader:
    """Wrap a training DataLoader of `CroppedViews` (position-seeded sampler): yields
    (augment(crops on `device`), labels). The views draw from a generator seeded by the
    batch's position in the epoch, so the loader resumes like the per-sample one (its
    `sampler.start_at`)."""

    def __init__(self, loader: DataLoader, augment: ViewRests, device: torch.device) -> None:
        if not isinstance(loader.sampler, PositionSeededSampler):
            raise TypeError("FileBatchLoader needs a PositionSeededSampler")
        self.loader, self.augment, self.device = loader, augment, device
        self.sampler: PositionSeededSampler = loader.sampler
        self.batch_size = int(loader.batch_size or 1)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[list[Tensor], Tensor]]:
        first = self.sampler.start // self.batch_size  # the sampler clears it when iterated
        base = epoch_seed(self.sampler.seed, self.sampler.epoch)
        g = torch.Generator(device=self.device)
        for k, (crops, labels) in enumerate(self.loader, start=first):
            position = self.sampler.global_position(k * self.batch_size)
            g.manual_seed(sample_seed(base, position) ^ _BATCH_STREAM)
            crops = [c.to(self.device, non_blocking=True) for c in crops]
            yield self.augment(crops, g), labels
