"""Authors' files against recipes: the same network under two spellings, the class count the
recipe's dataset fixes, and many / medium / few from the recipe's training split (issue 22)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image

from _authors_layouts import r32_file, randomize, save_vit_file
from gpaco.cli import main
from gpaco.run import load_config
from gpaco.tasks.classification.convert import convert_authors
from gpaco.models.backbone_names import same_backbone


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpaco: error: "), lines
    return lines[0]


def test_a_recipe_with_another_class_count_is_refused(tmp_path: Path, capsys) -> None:
    src, _ = r32_file(tmp_path, "paco", 10)
    out = tmp_path / "x.pt"
    assert main(["convert", str(src), "--recipe", "cifar100-lt-paco", "--out", str(out)]) == 2
    assert "10-class classifier" in _one_line(capsys) and not out.exists()
    assert main(["convert", str(src), "--recipe", "cifar10-lt-paco", "--out", str(out)]) == 0


def test_backbone_names_compare_by_meaning() -> None:
    assert same_backbone("timm:vit_base_patch16_224", "vit_base_patch16_224")
    assert same_backbone("resnet50", "resnet50")
    assert not same_backbone("timm:resnet50", "resnet50")  # timm's and torchvision's
    assert not same_backbone("timm:vit_large_patch16_224", "vit_base_patch16_224")


def test_a_mae_vit_file_fits_the_vit_recipe(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    vit = randomize(timm.create_model("vit_tiny_patch16_224", num_classes=3, img_size=32,
                                      patch_size=8, depth=2, global_pool="avg"), 3).eval()
    args = argparse.Namespace(model="vit_base_patch16", input_size=32, global_pool=True)
    path = save_vit_file(tmp_path / "checkpoint-99.pth", vit, args)
    # the file says timm:vit_base_patch16_224, the recipe vit_base_patch16_224: one network
    recipe = load_config("imagenet-gpaco-vit-b", overrides=["method=ce"])
    converted = convert_authors(path, recipe=recipe, backbone="timm:vit_tiny_patch16_224",
                                backbone_kwargs={"patch_size": 8, "depth": 2})
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(converted.model.eval()(x), vit(x))


def _folder(root: Path, split: str, counts: dict[str, int]) -> None:
    for k, (name, n) in enumerate(counts.items()):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (80 * k, i % 256, 0)).save(root / split / name / f"{i}.png")


def test_shot_groups_of_an_authors_file_come_from_the_recipes_training_split(tmp_path, capsys):
    src, _ = r32_file(tmp_path, "paco", 3)
    data = tmp_path / "data"
    _folder(data, "train", {"a": 101, "b": 30, "c": 5})  # many, medium, few
    _folder(data, "val", {"a": 2, "b": 2, "c": 2})
    args = ["eval", "--checkpoint", str(src), "--recipe", "cifar100-lt-paco",
            "data.dataset=image_folder", f"data.root={data}", "train.device=cpu",
            "data.workers=0"]
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("test: top1"))
    assert "many -" not in line and "few -" not in line and "(6 images)" in line
