"""Every shipped recipe trains one step and evaluates once through `gpaco train`, on tiny files
in its dataset's own release layout (issue 22: a recipe that cannot train or evaluate is caught
here, not by a user). Recipes are listed by gpaco.run.list_recipes, so a new one is covered.

What each recipe keeps: its method, model (backbone, head, queue, shuffle BN, layer decay),
loss, optimiser, views and transforms, and its weights file's format (MAE encoders, torchvision
and timm state dicts, open-mmlab's ResNetV1c file, written here with the exact keys and shapes
of the backbone, random values). What is made small: the image size (32 px for the
ImageNet-style recipes, crops of 32 for segmentation), the data (a few images; every class of
the long-tailed split-file benchmarks has one training image), one epoch of one step of 4
images (2 for segmentation; 2 per accumulated micro-batch for the ViT recipes), no warm-up, no
plots. Changed because the CPU or the tiny batch cannot run the recipe's value: fp16 becomes
bf16 (fp16 autocast needs CUDA), ghost batch norm uses groups of 2 (the recipes' 16-64 need
that many images a step). The ViT-L and Swin-L recipes are marked slow (several GB of
optimiser state and checkpoint a run; minutes on 2 busy cores): they still run with the suite.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from _dataset_fakes import (lines_per_class, write_ade20k, write_cifar10,
                            write_cifar100, write_cityscapes, write_coco_stuff10k,
                            write_fashion_mnist, write_image_folder, write_pascal_context_release,
                            write_pickle, write_split_file_set)
from gpaco import run as C
from gpaco.cli import main
from gpaco.train import run_dir as rd

pytest.importorskip("timm")
pytest.importorskip("scipy")

RECIPES = C.list_recipes()
# ViT-L / Swin-L: 225-293 s (ViT-L) and 43-51 s (Swin-L) a recipe at load 6 on 2 cores.
SLOW = {n for n in RECIPES if "large" in C.load_config(n).model.backbone}

COMMON = ["train.device=cpu", "data.workers=0", "output.progress=none",
          "output.tensorboard=false", "output.plots=false", "train.max_steps_per_epoch=1",
          "train.batch_size=4", "train.log_every=1", "train.eval_every=1"]
SEG_CROP = 32


class Layouts:
    """Each dataset's files, written once for the module when a recipe first asks."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cache
    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path

    @cache
    def cifar10(self) -> Path:
        write_cifar10(self.folder("cifar10"), per_class_per_batch=20, test_per_class=1)
        return self.root / "cifar10"

    @cache
    def cifar100(self) -> Path:
        root = self.folder("cifar100")
        write_cifar100(root, per_class=100, test_per_class=1, zeros=True)
        # 10 test images, not 100: the CIFAR ResNet-50 keeps 32 px maps (1.3 GFLOPs an image)
        labels = list(range(0, 100, 10))
        write_pickle(root / "cifar-100-python" / "test",
                     {"fine_labels": labels, "coarse_labels": [c // 5 for c in labels],
                      "data": np.zeros((10, 3072), np.uint8)})
        return root

    @cache
    def fashion_mnist(self) -> Path:
        write_fashion_mnist(self.folder("fashion"), per_class=100, test_per_class=1)
        return self.root / "fashion"

    @cache
    def split_file(self, dataset: str) -> list[str]:
        """Every class's first image of the shipped list, in the benchmark's layout."""
        source, classes = {"imagenet_lt": ("ImageNet_LT_val.txt", 1000),
                           "places_lt": ("Places_LT_train.txt", 365),
                           "inat2018": ("iNaturalist18_val.txt", 8142)}[dataset]
        lines = lines_per_class(source, classes)
        root = self.folder(dataset) / "images"
        train, test = write_split_file_set(root, lines, lines[:4])
        return [f"data.root={root}", f"data.train_split={train}", f"data.test_split={test}"]

    @cache
    def imagenet(self) -> Path:
        root = self.folder("imagenet")
        write_image_folder(root, ["n01440764", "n01443537", "n01484850"], {"train": 6, "val": 1})
        return root

    @cache
    def segmentation(self, dataset: str) -> Path:
        folder, h, w = self.folder(dataset), 48, 64
        if dataset == "ade20k":
            return write_ade20k(folder, h, w)
        if dataset == "cityscapes":
            return write_cityscapes(folder, h, w)
        if dataset == "coco_stuff10k":
            return write_coco_stuff10k(folder, h, w)
        voc, mats = write_pascal_context_release(folder, h, w)
        assert main(["prepare", "pascal_context59", str(voc), str(mats)]) == 0
        return voc

    @cache
    def weights(self, name: str, backbone: str, kwargs: str = "{}") -> Path:
        """A weights file `name` of `backbone` (built with timm keyword arguments `kwargs`, a
        JSON object) in the layout its recipe names, random values."""
        path = self.folder("weights") / f"{backbone}-{abs(hash(kwargs))}-{Path(name).name}"
        if Path(name).name == "resnet18_v1c.pth":  # open-mmlab's ResNetV1c file
            from _mmseg_layouts import resnet18_v1c

            state = {"state_dict": resnet18_v1c(torch.Generator().manual_seed(0))}
        elif backbone.startswith("vit_"):  # an MAE encoder: {"model": encoder}, no head
            from gpaco.models.vit import create_vit

            with torch.device("meta"):
                model = create_vit(backbone, global_pool="token")
            state = {"model": _random(model.state_dict())}
        elif backbone.startswith("tu-"):  # timm's state dict of the encoder (its classifier too)
            import timm

            with torch.device("meta"):
                model = timm.create_model(backbone[3:], **json.loads(kwargs))
            state = _random(model.state_dict())
        else:  # torchvision's released file: a plain state dict
            import torchvision

            with torch.device("meta"):
                model = torchvision.models.get_model(backbone)
            state = _random(model.state_dict())
        torch.save(state, path)
        return path


def _random(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, t in state.items():
        if not t.is_floating_point():
            out[key] = torch.zeros(t.shape, dtype=t.dtype)
        elif key.endswith(("running_var", "weight")) and t.dim() == 1:  # norms stay near 1
            out[key] = torch.ones(t.shape)
        else:
            out[key] = torch.randn(t.shape, generator=g) * 0.02
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> Iterator[Layouts]:
    root = tmp_path_factory.mktemp("layouts")
    yield Layouts(root)
    shutil.rmtree(root)  # GBs of weights files: pytest keeps its last three sessions' folders


def _classification(cfg: C.Config, layouts: Layouts) -> list[str]:
    d, m = cfg.data, cfg.model
    out = []
    if d.dataset in ("cifar10_lt", "cifar100_lt"):
        out.append(f"data.root={getattr(layouts, d.dataset[:-3])()}")
    elif d.dataset == "fashion_mnist_lt":
        out.append(f"data.root={layouts.fashion_mnist()}")
    elif d.dataset in ("imagenet_lt", "places_lt", "inat2018"):
        out += layouts.split_file(d.dataset)
        if d.val_split is not None:
            out.append("data.val_split=null")
    elif d.dataset == "image_folder":
        out.append(f"data.root={layouts.imagenet()}")
    if d.image_size > 32:
        out.append("data.image_size=32")
        if m.backbone.startswith("vit_"):  # a ViT is built for its input (pos_embed resampled)
            out.append(f"model.backbone_kwargs={json.dumps({**m.backbone_kwargs, 'img_size': 32})}")
    if m.ghost_bn:  # two batch-norm groups in the batch, as on the authors' GPUs
        out.append("model.ghost_bn=2")
    if cfg.train.accum_iter > 1:  # two samples per accumulated micro-batch (mixup pairs them)
        out.append(f"train.batch_size={2 * cfg.train.accum_iter}")
    if m.pretrained:
        out.append(f"model.pretrained={layouts.weights(m.pretrained, m.backbone)}")
    if cfg.train.amp == "fp16":  # the recipe's mixed precision in the CPU's half type
        out.append("train.amp=bf16")
    schedule = ["schedule.epochs=1", "schedule.warmup_epochs=0"]
    if cfg.schedule.name == "step":
        schedule.append("schedule.milestones=[]")
    return [*out, *schedule]


def _segmentation(cfg: C.Config, layouts: Layouts) -> list[str]:
    d, m = cfg.data, cfg.model
    out = [f"data.crop_size=[{SEG_CROP},{SEG_CROP}]", "data.scale=[64,48]", "train.batch_size=2",
           "schedule.iterations=1", "schedule.warmup_iterations=0"]
    if d.dataset == "seg_demo":
        out.append("data.num_images=16")
    else:
        out.append(f"data.root={layouts.segmentation(d.dataset)}")
    kwargs = dict(m.backbone_kwargs or {})
    if "img_size" in kwargs:  # a Swin is built for its crop
        kwargs["img_size"] = SEG_CROP
        out.append(f"model.backbone_kwargs={json.dumps(kwargs)}")
    if m.pretrained:
        timm_kwargs = {k: v for k, v in kwargs.items() if k != "drop_path_rate"}
        path = layouts.weights(m.pretrained, m.backbone, json.dumps(timm_kwargs))
        out.append(f"model.pretrained={path}")
    return out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in RECIPES])
def test_recipe_trains_one_step_and_evaluates(name: str, layouts: Layouts, tmp_path: Path,
                                              capsys) -> None:
    cfg = C.load_config(name)
    task = _segmentation if cfg.task == "segmentation" else _classification
    run = tmp_path / "run"
    try:
        code = main(["train", "--recipe", name, *COMMON, *task(cfg, layouts),
                     f"output.dir={run}"])
        assert code == 0, capsys.readouterr().err
        summary = json.loads((run / rd.SUMMARY).read_text())
        metric = "miou" if cfg.task == "segmentation" else "top1"
        assert 0.0 <= summary["last"][metric] <= 100.0
        assert (run / rd.CHECKPOINT).is_file()
    finally:  # a ViT-L run leaves 3.5 GB of checkpoint
        shutil.rmtree(run, ignore_errors=True)
