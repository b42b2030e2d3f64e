"""Two-view ImageNet-LT samples/s per core: the authors' pipeline, gpaco's per-sample path and
gpaco's batched path, on a folder of generated photo-like JPEGs (375x500-class, quality 90).

- decode_pil / decode_torchvision: the decode alone, as the authors' loader (PIL open +
  convert RGB) and gpaco's batched path (torchvision.io) do it, one image a sample;
- authors: their ImageNet-LT PaCo transform [randcls, sim] (`--method gpaco`: GPaCo's [randcls,
  randclsstack]) re-implemented from its facts (paper-spec 3.1: torchvision's v1 ops on PIL,
  timm's RandAugment rand-n2-m10-mstd0.5 with the ImageNet mean as fill, MoCo's PIL blur), read
  as their ImageFolder-style loader does (PIL open + convert RGB), no seeding;
- per-sample: gpaco's `imagenet-lt-paco-r50` (`-gpaco-r50`) views on `LongTailImageFolder`,
  under the position-seeded sampler every gpaco training loader uses;
- batched: gpaco's image-file batched path (decode + crops in the loader, the rest of the views
  on whole batches in the main process, as the training step does);
- batched_host: the batched path's host part alone (decode + crops + collation): what the CPU
  does per sample when the device that trains runs the rest of the views (a GPU).

"1 core": samples per CPU second of this process on one thread, the paths interleaved batch by
batch (CPU time, not wall time: on a shared machine waiting for a core is not counted).
"workers N": samples per wall second through a DataLoader with N worker processes (one thread
each); the batched path then also augments in the main process (one thread), so it uses N + 1
processes and its per-core figure divides by N + 1. Record the load: wall figures follow it.

  python benchmarks/data_speed.py --images 1000 --out benchmarks/results-data-speed-cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch.utils.data import DataLoader, Dataset

from gpaco.data.batched_files import batched_file_views
from gpaco.data.image_files import load_rgb_tensor
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.in_memory import ArrayDataset
from gpaco.data.samplers import ShardedBatchSampler
from gpaco.data.seeded_samples import PositionSeededSampler, SeededSamples
from gpaco.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_views

VIEWS = {"paco": ["randcls", "sim"], "gpaco": ["randcls", "randclsstack"]}  # the ImageNet-LT recipes'
SIZES = ((375, 500), (500, 375), (333, 500), (375, 500), (400, 500), (500, 333))  # (h, w)


def photo_like(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A 1/f-noise scene with sharp-edged shapes, soft lighting and sensor noise: JPEG-encodes to
    a photo's size (~80 kB at quality 90 for 375x500) and decodes at a photo's speed."""
    img = np.zeros((h, w, 3), np.float32)
    for octave in range(1, 8):  # 1/f: each finer octave has half the amplitude
        gh, gw = max(2, h >> (8 - octave)), max(2, w >> (8 - octave))
        layer = rng.normal(0, 1, (gh, gw, 3)).astype(np.float32)
        layer = np.stack([np.asarray(Image.fromarray(layer[..., c]).resize((w, h), Image.BICUBIC))
                          for c in range(3)], -1)
        img += layer * (60.0 / 1.25**octave)
    img += rng.uniform(60, 190, 3).astype(np.float32)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    pil = pil.filter(ImageFilter.GaussianBlur(0.7))  # optics
    noisy = np.asarray(pil, np.float32) + rng.normal(0, 6.0, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_folder(root: Path, n: int, classes: int = 10, seed: int = 0) -> Path:
    """root/train/<class>/<i>.jpg: n photo-like JPEGs at quality 90 (kept if already there)."""
    train = root / "train"
    if train.is_dir() and sum(1 for _ in train.rglob("*.jpg")) == n:
        return root
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = SIZES[i % len(SIZES)]
        folder = train / f"c{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        photo_like(rng, h, w).save(folder / f"{i:05d}.jpg", quality=90)
    return root


# ---- the authors' pipeline, from the facts of their transform (not their code) -------------
def authors_views(method: str = "paco", n: int = 2, m: int = 10
                  ) -> Callable[[Image.Image], list[torch.Tensor]]:
    from timm.data.auto_augment import rand_augment_transform
    from torchvision import transforms as T  # the v1 ops their scripts use

    class MocoBlur:  # MoCo v2's loader: PIL GaussianBlur, radius ~ U(0.1, 2)
        def __call__(self, x: Image.Image) -> Image.Image:
            return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    fill = tuple(min(255, round(255 * v)) for v in IMAGENET_MEAN)
    randcls = T.Compose([
        T.RandomResizedCrop(224, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.0)], p=1.0),
        rand_augment_transform(f"rand-n{n}-m{m}-mstd0.5",
                               {"translate_const": int(224 * 0.45), "img_mean": fill}),
        T.ToTensor(), normalize])
    sim = T.Compose([
        T.RandomResizedCrop(224, scale=(0.08, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.0)], p=1.0), T.RandomGrayscale(p=0.2),
        T.RandomApply([MocoBlur()], p=0.5), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    if method == "paco":
        return lambda img: [randcls(img), sim(img)]
    stack = T.Compose([  # GPaCo's second view: randcls with the grey / blur stack before RA
        T.RandomResizedCrop(224, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.0)], p=1.0), T.RandomGrayscale(p=0.2),
        T.RandomApply([MocoBlur()], p=0.5),
        rand_augment_transform(f"rand-n{n}-m{m}-mstd0.5",
                               {"translate_const": int(224 * 0.45), "img_mean": fill}),
        T.ToTensor(), normalize])
    return lambda img: [randcls(img), stack(img)]


def authors_cifar_views() -> Callable[[Image.Image], list[torch.Tensor]]:
    """Their CIFAR PaCo views [regular, sim_cifar] (paper-spec 3.1) from the facts of their
    transforms: v1 ops on PIL; their CIFAR10Policy picks one of the 25 sub-policies with
    Python's random and applies each op with its probability, the signed ops with a random
    sign, as PIL calls (the grey-filled geometric ops, ImageEnhance, ImageOps); their Cutout
    multiplies the tensor by a 0/1 mask; their blur is MoCo's PIL blur."""
    from PIL import ImageEnhance, ImageOps
    from torchvision import transforms as T

    from gpaco.data.cifar_autoaugment import (CIFAR10_POLICY, GEOMETRIC_OPS, SIGNED_OPS,
                                              geometric_op, magnitude)
    from gpaco.data.transforms import CIFAR_MEAN, CIFAR_STD

    enhance = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
               "Sharpness": ImageEnhance.Sharpness, "Brightness": ImageEnhance.Brightness}

    def op(img: Image.Image, name: str, m: float) -> Image.Image:
        if name in SIGNED_OPS:
            m *= random.choice([-1, 1])
        if name in GEOMETRIC_OPS:
            return geometric_op(img, name, m)
        if name in enhance:
            return enhance[name](img).enhance(1 + m)
        if name == "Posterize":
            return ImageOps.posterize(img, int(m))
        if name == "Solarize":
            return ImageOps.solarize(img, m)
        return {"AutoContrast": ImageOps.autocontrast, "Equalize": ImageOps.equalize,
                "Invert": ImageOps.invert}[name](img)

    def policy(img: Image.Image) -> Image.Image:
        for name, p, bin_ in CIFAR10_POLICY[random.randint(0, 24)]:
            if random.random() < p:
                img = op(img, name, magnitude(name, bin_))
        return img

    def cutout(x: torch.Tensor, length: int = 16) -> torch.Tensor:
        h, w = x.shape[1:]
        mask = np.ones((h, w), np.float32)
        y, xc = np.random.randint(h), np.random.randint(w)
        mask[max(0, y - length // 2):min(h, y + length // 2),
             max(0, xc - length // 2):min(w, xc + length // 2)] = 0.0
        return x * torch.from_numpy(mask).expand_as(x)

    class MocoBlur:
        def __call__(self, x: Image.Image) -> Image.Image:
            return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

    normalize = T.Normalize(CIFAR_MEAN, CIFAR_STD)
    regular = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), policy,
                         T.ToTensor(), cutout, normalize])
    sim = T.Compose([T.RandomResizedCrop(32, scale=(0.2, 1.0)), T.RandomHorizontalFlip(),
                     T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                     T.RandomGrayscale(p=0.2), T.RandomApply([MocoBlur()], p=0.5),
                     T.ToTensor(), normalize])
    return lambda img: [regular(img), sim(img)]


class AuthorsFolder(Dataset):
    """Their loader: PIL open + convert('RGB'), then the two-view transform."""

    def __init__(self, paths: list[str], transform: Callable) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        with open(self.paths[i], "rb") as f:
            img = Image.open(f).convert("RGB")
        return self.transform(img), 0


class DecodeOnly(Dataset):
    """The decode alone, as each loader does it (PIL open + convert('RGB'), or gpaco's
    torchvision.io read); the item is the image's shape, so collation costs nothing."""

    def __init__(self, paths: list[str], read: Callable[[str], Any]) -> None:
        self.paths, self.read = paths, read

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return torch.tensor(self.read(self.paths[i]).shape[-2:]), 0


def _pil_rgb(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        return np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1)


# ---- timing ------------------------------------------------------------------------------
def _one_thread(_: int = 0) -> None:
    torch.set_num_threads(1)


def rate(batches: Iterable, after: Callable[[Any], Any]) -> float:
    """Samples per wall second over the batches after the first (start-up and worker spawn
    left out)."""
    it = iter(batches)
    after(next(it))
    seen, start = 0, time.perf_counter()
    for batch in it:
        after(batch)
        seen += len(batch[1])
    return seen / (time.perf_counter() - start)


def cpu_rates(paths: dict[str, tuple[Dataset, bool, Callable | None]], batch: int,
              rounds: int) -> dict[str, float]:
    """Samples per CPU second of this process (one thread, no workers) of each path: each
    round reads the next `batch`-sized chunk through every path in turn, so load changes hit
    all paths alike; CPU time (not wall time) leaves out the waits for a busy machine's cores."""
    used = dict.fromkeys(paths, 0.0)
    done = dict.fromkeys(paths, 0)
    iters = {name: iter(loader(ds, 0, batch, seeded)) for name, (ds, seeded, _) in paths.items()}
    for _ in range(rounds):
        for name, (_, _, augment) in paths.items():
            start = time.process_time()
            try:
                crops, labels = next(iters[name])
            except StopIteration:  # next epoch (a new order; creating it is counted too)
                iters[name] = iter(loader(paths[name][0], 0, batch, paths[name][1]))
                crops, labels = next(iters[name])
            if augment is not None:
                augment(crops)
            used[name] += time.process_time() - start
            done[name] += len(labels)
    return {name: done[name] / used[name] for name in paths}


def loader(ds: Dataset, workers: int, batch: int, seeded: bool) -> DataLoader:
    kw: dict[str, Any] = {"num_workers": workers, "batch_size": batch, "drop_last": True,
                          "worker_init_fn": _one_thread if workers else None}
    if seeded:  # what every gpaco training loader does (engine.build.cpu_loader)
        order = ShardedBatchSampler(len(ds), batch, seed=0)
        return DataLoader(SeededSamples(ds), sampler=PositionSeededSampler(order, seed=0), **kw)
    return DataLoader(ds, shuffle=True, **kw)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--data", type=Path, default=Path("bench/data-speed"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--rounds", type=int, default=15, help="interleaved one-core rounds")
    p.add_argument("--cifar", action="store_true",
                   help="also the CIFAR views (the same photos at 32 px, in memory), one core")
    p.add_argument("--paths", nargs="*",
                   default=["decode_pil", "decode_torchvision", "authors", "per_sample",
                            "batched", "batched_host"])
    p.add_argument("--method", choices=sorted(VIEWS), default="paco",
                   help="the two views: PaCo's [randcls, sim] or GPaCo's [randcls, randclsstack]")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results-data-speed-cpu.json"))
    args = p.parse_args()
    _one_thread()
    root = make_folder(args.data, args.images)
    ds = LongTailImageFolder(root, train=True)
    sizes = [os.path.getsize(f) for f in ds.data]
    result: dict[str, Any] = {
        "method": args.method, "images": len(ds), "mean_jpeg_kB": round(sum(sizes) / len(sizes) / 1e3, 1),
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "samples_per_s": {}}
    paths = {
        "decode_pil": (DecodeOnly(ds.data, _pil_rgb), False, None),
        "decode_torchvision": (DecodeOnly(ds.data, load_rgb_tensor), False, None),
        "authors": (AuthorsFolder(ds.data, authors_views(args.method)), False, None),
        "per_sample": (LongTailImageFolder(root, transform=build_views(VIEWS[args.method])),
                       True, None),
    }
    crops, views = batched_file_views(LongTailImageFolder(root), VIEWS[args.method])
    g = torch.Generator().manual_seed(0)
    paths["batched"] = (crops, True, lambda c: views(c, g))
    paths["batched_host"] = (crops, True, None)  # the views' rest left to the device
    paths = {k: v for k, v in paths.items() if k in args.paths}
    rounds = min(args.rounds, len(ds) // args.batch)
    if args.cifar:
        data = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.BICUBIC))
                         for f in ds.data])
        cifar = {"authors_cifar": (ArrayDataset(data, ds.targets, ds.classes,
                                                authors_cifar_views()), False, None),
                 "per_sample_cifar": (ArrayDataset(data, ds.targets, ds.classes,
                                                   build_views(["cifar_regular", "cifar_sim"])),
                                      True, None)}
        rates = cpu_rates(cifar, 128, 2 * args.rounds)
        result["cifar_two_views_per_cpu_s"] = {k: round(v, 1) for k, v in rates.items()}
        print("CIFAR views (32 px), samples per CPU second:", result["cifar_two_views_per_cpu_s"])
    one_core = cpu_rates(paths, args.batch, rounds)
    for name, (dataset, seeded, augment) in paths.items():
        rates = {"1 core (CPU time)": one_core[name]}
        for w in args.workers:
            after = (lambda b, a=augment: a(b[0])) if augment else (lambda b: b)
            r = rate(loader(dataset, w, args.batch, seeded), after)
            cores = w + (1 if augment else 0)
            rates[f"workers {w} (wall)"] = r
            rates[f"workers {w} per core"] = r / cores
        result["samples_per_s"][name] = {k: round(v, 1) for k, v in rates.items()}
        print(name, result["samples_per_s"][name], flush=True)
    result["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
