"""A user's working folder for the documentation's commands: every file they name, built on
first use in its real format (small synthetic data, tiny checkpoints, the authors' layouts)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("interop", "data")]

from _authors_layouts import (AuthorsMoCo, gpaco_projection, paco_projection,  # noqa: E402
                              randomize, save_resnet_file)
from _dataset_fakes import write_cifar100, write_png  # noqa: E402
from gpaco.cli import main  # noqa: E402

# One optimiser step of a classification run, then its evaluations, without plots.
ONE_STEP = ["epochs=1", "train.max_steps_per_epoch=1", "train.eval_batch_size=500",
            "output.progress=none", "output.tensorboard=false", "output.plots=false",
            "train.threads=1"]
SEG_SHRINK = ["schedule.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=4",
              "train.eval_every=1", "output.progress=none", "output.tensorboard=false",
              "train.threads=1"]
IMAGENET_LT_CLASSES = 1000


class World:
    """The folder `root`; `need(name)` builds the named part once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: set[str] = set()
        self._parts: dict[str, Callable[[], None]] = {
            "tiny run": self._tiny_run, "photos": self._photos, "cifar100": self._cifar100,
            "imagenet-lt": self._imagenet_lt,
            "paco_r50.pth.tar": lambda: self._authors_file("paco_r50.pth.tar", "resnet50", "paco"),
            "gpaco_r50_imagenetlt.pth.tar": lambda: self._authors_file(
                "gpaco_r50_imagenetlt.pth.tar", "resnet50", "gpaco"),
            "x101.pth.tar": lambda: self._authors_file("x101.pth.tar", "resnext101_32x4d", "gpaco"),
            "x50.pth.tar": lambda: self._authors_file("x50.pth.tar", "resnext50_32x4d", "gpaco"),
            "pascal-context sources": self._pascal_context, "export": self._export,
            "default run": self._default_run, "shoe.png": self._shoe, "seg run": self._seg_run,
            "saved logits": self._saved_logits, "posthoc logits": self._posthoc_logits,
        }

    def need(self, *names: str) -> None:
        for name in names:
            if name not in self._built:
                self._parts[name]()
                self._built.add(name)

    def _train(self, *args: str) -> None:
        assert main(["train", *args]) == 0, args

    def _tiny_run(self) -> None:
        """runs/x: a ResNet-8 PaCo run on the embedded data; a.pt and b.pt two members."""
        self._train(*ONE_STEP, f"output.dir={self.root / 'runs/x'}", "model.backbone=resnet8")
        self._train(*ONE_STEP, f"output.dir={self.root / 'runs/y'}", "model.backbone=resnet8",
                    "seed=1")
        shutil.copy(self.root / "runs/x/last.pt", self.root / "a.pt")
        shutil.copy(self.root / "runs/y/last.pt", self.root / "b.pt")

    def _default_run(self) -> None:
        """runs/default as the quick start's `gpaco` leaves it (one step an epoch)."""
        if not (self.root / "runs/default/last.pt").exists():  # the quick start's line ran
            self._train(*ONE_STEP, "epochs=6", f"output.dir={self.root / 'runs/default'}")

    def _saved_logits(self) -> None:
        """a/ and b/test_logits.npy: the test logits of runs/x and runs/y (--save-logits)."""
        self.need("tiny run")
        for run, folder in (("x", "a"), ("y", "b")):
            (self.root / folder).mkdir()
            assert main(["eval", "--checkpoint", str(self.root / f"runs/{run}/last.pt"),
                         "--save-logits", str(self.root / folder / "test_logits.npy")]) == 0

    def _posthoc_logits(self) -> None:
        """runs/default/eval-last/{test,val}_logits.npy, as `gpaco eval --posthoc` leaves them."""
        self.need("default run")
        if not (self.root / "runs/default/eval-last/val_logits.npy").exists():
            assert main(["eval", "--checkpoint", str(self.root / "runs/default/last.pt"),
                         "--posthoc"]) == 0

    def _seg_run(self) -> None:
        """runs/seg-default as `gpaco train --recipe seg-default` leaves it (two steps)."""
        if not (self.root / "runs/seg-default/last.pt").exists():
            self._train("--recipe", "seg-default", *SEG_SHRINK,
                        f"output.dir={self.root / 'runs/seg-default'}")

    def _export(self) -> None:
        self.need("tiny run")
        assert main(["export", str(self.root / "runs/x/last.pt"), "--out",
                     str(self.root / "backbone.pth")]) == 0

    def _photos(self) -> None:
        for i, value in enumerate((30, 200)):
            write_png(self.root / "photos" / f"photo{i}.png", value, (28, 28))

    def _shoe(self) -> None:
        write_png(self.root / "shoe.png", 90, (28, 28))

    def _cifar100(self) -> None:
        """data/cifar-100-python with 100 training images a class: IF 0.01 keeps 100 ... 1."""
        write_cifar100(self.root / "data", per_class=100, test_per_class=10)

    def _imagenet_lt(self) -> None:
        """data/imagenet/train/<class>/*.jpg + the recipe's three `path label` lists: one
        training image per class, two validation and test images per listed class."""
        root, lines = self.root / "data/imagenet", {"train": [], "val": [], "test": []}
        rng = np.random.default_rng(0)
        for c in range(IMAGENET_LT_CLASSES):
            for split, count in (("train", 1), ("val", 1 if c < 4 else 0),
                                 ("test", 1 if c < 4 else 0)):
                for i in range(count):
                    rel = f"{split}/n{c:08d}/{i}.jpg"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(root / rel, quality=90)
                    lines[split].append(f"{rel} {c}")
        for split, rows in lines.items():
            (self.root / f"data/ImageNet_LT_{split}.txt").write_text("\n".join(rows) + "\n")

    def _authors_file(self, name: str, arch: str, layout: str) -> None:
        """An authors' ImageNet-LT file (1000 classes) of `arch` in `layout` "paco" (momentum
        encoder, BN projection) or "gpaco"; their ResNeXt-101 32x4d in torchvision's layout."""
        from gpaco.models import create_backbone

        def encoder(seed: int) -> torch.nn.Module:
            net = create_backbone(arch)  # torchvision's network, fc = Identity
            make = paco_projection if layout == "paco" else gpaco_projection
            net.fc = make(2048, 128)
            return randomize(net, seed)

        key = encoder(3) if layout == "paco" else None
        wrapper = AuthorsMoCo(encoder(1), randomize(torch.nn.Linear(2048, 1000), 2), 64, 128,
                              1000, encoder_k=key)
        save_resnet_file(self.root / name, wrapper, arch)

    def _pascal_context(self) -> None:
        """VOCdevkit/VOC2010 (images, ImageSets) and trainval/<id>.mat (the 459-class maps)."""
        from scipy import io as scipy_io

        voc, mats = self.root / "VOCdevkit/VOC2010", self.root / "trainval"
        (voc / "ImageSets/Main").mkdir(parents=True)
        (voc / "JPEGImages").mkdir()
        mats.mkdir()
        (voc / "ImageSets/Main/train.txt").write_text("2008_000002\n")
        (voc / "ImageSets/Main/val.txt").write_text("2008_000007\n")
        label = np.array([[2, 284], [0, 458]], np.uint16).repeat(4, 0).repeat(4, 1)
        for name in ("2008_000002", "2008_000007"):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
            scipy_io.savemat(mats / f"{name}.mat", {"LabelMap": label})
