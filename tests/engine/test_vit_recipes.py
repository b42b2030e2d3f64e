"""The MAE-ViT recipes: their values against the paper's (extensions-spec B), and their
machinery trained end to end on a tiny ViT from a small MAE-format file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpaco import run as C
from gpaco import run as T
from gpaco.train import trainer
from gpaco.tasks.classification.build import build_batch_mix
from gpaco.weights.checkpoint import load_checkpoint

pytest.importorskip("timm")

from gpaco.models.vit import create_vit  # noqa: E402  (needs timm)

VIT_RECIPES = ["imagenet-ce-vit-b", "imagenet-ce-vit-l", "imagenet-gpaco-vit-b",
               "imagenet-gpaco-vit-l", "imagenet-multitask-vit-b"]


@pytest.mark.parametrize("recipe,lr,decay,drop,epochs,accum", [
    ("imagenet-ce-vit-b", 2e-3, 0.65, 0.1, 100, 4),
    ("imagenet-gpaco-vit-b", 2e-3, 0.65, 0.1, 100, 4),
    ("imagenet-multitask-vit-b", 2e-3, 0.65, 0.1, 100, 4),
    ("imagenet-ce-vit-l", 4e-3, 0.75, 0.2, 50, 8),
    ("imagenet-gpaco-vit-l", 4e-3, 0.75, 0.2, 50, 8),
])
def test_recipe_values_are_the_papers(recipe, lr, decay, drop, epochs, accum):
    cfg = C.load_config(recipe)
    o, s, t, m = cfg.optim, cfg.schedule, cfg.train, cfg.model
    assert (o.name, o.lr, o.weight_decay, o.layer_decay, o.betas) == (
        "adamw", pytest.approx(lr), 0.05, decay, [0.9, 0.999])
    assert (s.name, s.epochs, s.warmup_epochs, s.min_lr) == ("warmup_cosine", epochs, 5, 1e-6)
    assert (t.batch_size, t.accum_iter, t.amp) == (1024, accum, "fp16")
    assert m.backbone_kwargs == {"global_pool": "avg", "drop_path_rate": drop}
    assert m.classifier_init_std == 2e-5 and cfg.data.test_transform == "vit_test"


def test_gpaco_and_ce_recipes_differ_as_the_paper_says():
    g, ce = C.load_config("imagenet-gpaco-vit-b"), C.load_config("imagenet-ce-vit-b")
    assert (g.method, g.model.head, g.model.dim, g.model.queue_size) == ("gpaco", "gelu", 128, 8192)
    assert (g.loss.alpha, g.loss.temperature, g.loss.label_smoothing, g.loss.prior) == (
        0.2, 0.2, 0.1, False)
    assert (g.data.views, g.data.randaug_n, g.data.randaug_m) == (["randclsstack", "sim"], 12, 10)
    assert (g.data.mixup_alpha, g.data.cutmix_alpha) == (0.0, 0.0)
    assert build_batch_mix(g, 1000) is None
    assert (ce.method, ce.data.views, ce.loss.label_smoothing) == ("ce", ["vit_ce_train"], 0.1)
    mix = build_batch_mix(ce, 1000).mixup
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.label_smoothing) == (0.8, 1.0, 0.1)


def _mae_file(path: Path) -> Path:
    """A tiny MAE encoder on a 4x4 grid (the model's is 8x8): `{"model": state_dict}`."""
    torch.manual_seed(5)
    vit = create_vit("vit_micro_patch4_32", img_size=16, global_pool="token")
    torch.save({"model": vit.state_dict()}, path)
    return path


TINY_VIT = ["data.dataset=embedded", "data.image_size=32", "data.workers=0",
            "model.backbone=vit_micro_patch4_32", "train.amp=none", "train.device=cpu",
            "train.batch_size=32", "train.eval_batch_size=500", "output.progress=none",
            "output.tensorboard=false", "output.plots=false", "epochs=2", "warmup_epochs=1",
            "train.max_steps_per_epoch=2"]


@pytest.mark.parametrize("recipe,extra", [
    ("imagenet-gpaco-vit-b", ["model.queue_size=64"]),
    ("imagenet-ce-vit-b", []),
])
def test_recipe_machinery_trains_a_tiny_vit_from_an_mae_file(tmp_path, recipe, extra, capsys):
    mae = _mae_file(tmp_path / "mae.pth")
    cfg = C.load_config(recipe, overrides=[*TINY_VIT, *extra, f"model.pretrained={mae}",
                                           "model.backbone_kwargs={drop_path_rate: 0.1}",
                                           f"output.dir={tmp_path / 'run'}"])
    assert cfg.optim.lr == pytest.approx(5e-4 * 32 / 256)
    summary = T.train(cfg, Path(cfg.output.dir))
    assert "pos_embed resampled 4x4 -> 8x8" in capsys.readouterr().out
    assert 0.0 <= summary["last"]["top1"] <= 100.0
    ckpt = load_checkpoint(Path(cfg.output.dir) / "last.pt")
    scales = sorted({round(g["lr_scale"], 6) for g in ckpt["optimizer"]["param_groups"]})
    assert scales == [round(0.65 ** k, 6) for k in (3, 2, 1, 0)]  # embeddings, 2 blocks, rest


def test_the_recipes_read_the_imagenet_train_val_wnid_layout(tmp_path):
    """root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG, labels in sorted-wnid order (as
    torchvision's ImageFolder); GPaCo's two views and the bicubic 256/224-style test input."""
    from PIL import Image

    from gpaco.tasks.classification.build import build_data

    wnids = ["n01440764", "n01443537", "n01484850"]
    for split, per_class in (("train", 2), ("val", 1)):
        for k, wnid in enumerate(reversed(wnids)):  # written out of order on purpose
            for i in range(per_class):
                path = tmp_path / split / wnid / f"{wnid}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (48, 40), (40 * k, 90, 200)).save(path, "JPEG")
    cfg = C.load_config("imagenet-gpaco-vit-b", overrides=[
        f"data.root={tmp_path}", "data.image_size=32", "data.workers=0", "train.batch_size=2", "train.accum_iter=1"])
    data = build_data(cfg, torch.device("cpu"))
    assert data.train.classes == wnids and data.test.classes == wnids
    assert data.train.targets == [0, 0, 1, 1, 2, 2] and data.test.targets == [0, 1, 2]
    views, label = data.train[0]
    assert [v.shape for v in views] == [(3, 32, 32), (3, 32, 32)] and label == 0
    image, _ = data.test[2]
    assert image.shape == (3, 32, 32)
