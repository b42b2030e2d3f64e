"""authors' file -> gpaco checkpoint: gpaco's own loaders, eval and config rebuild the model."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image

from _authors_layouts import gpaco_projection, pooled_logits, r32_file, randomize, save_vit_file
from gpaco.tasks.classification.build import build_model
from gpaco.weights.checkpoint import load_checkpoint, load_weights
from gpaco.run import from_dict, to_dict
from gpaco.tasks.classification.convert import convert_authors, write_converted
from gpaco.run import evaluate_checkpoint
from gpaco.tasks.classification.restore import model_from_checkpoint
from gpaco.errors import UserError
from gpaco.models import PaCoModel

C = 4
RUN_STATE_KEYS = {"model", "epoch", "config", "best", "num_classes", "class_counts", "classes"}


def _x() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def test_converted_paco_file_rebuilds_from_its_own_config(tmp_path: Path) -> None:
    src, wrapper = r32_file(tmp_path, "paco", C)
    out = tmp_path / "gpaco.pt"
    line = write_converted(src, out, classes=["a", "b", "c", "d"], class_counts=[50, 20, 5, 1])
    assert "loaded" in line and "\n" not in line
    ckpt = load_checkpoint(out)  # gpaco's own reader: weights_only, nothing allowed extra
    assert RUN_STATE_KEYS <= set(ckpt) and ckpt["epoch"] == 400
    assert ckpt["classes"] == ["a", "b", "c", "d"] and ckpt["class_counts"] == [50, 20, 5, 1]
    cfg = from_dict(ckpt["config"])  # a valid config under today's schema ...
    assert to_dict(cfg) == ckpt["config"]  # ... saved exactly as to_dict writes one
    assert (cfg.method, cfg.model.backbone, cfg.model.dim, cfg.model.head,
            cfg.model.queue_size) == ("paco", "resnet32", 32, "bn", 16)
    assert cfg.data.test_transform == "cifar_test" and ckpt["num_classes"] == C
    model = build_model(cfg, ckpt["num_classes"])
    load_weights(model, ckpt)  # strict, as `gpaco eval` and resume load
    assert isinstance(model, PaCoModel)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(_x()), pooled_logits(wrapper.encoder_q, wrapper.linear, _x()))
    assert ckpt["converted_from"]["meta"]["best_acc"] == pytest.approx(52.1)


def test_gpaco_eval_runs_on_a_converted_file(tmp_path: Path) -> None:
    src, wrapper = r32_file(tmp_path, "gpaco", C)
    out = tmp_path / "gpaco.pt"
    write_converted(src, out)
    for label, value in (("c0", 0), ("c1", 90), ("c2", 180), ("c3", 250)):
        folder = tmp_path / "images" / "val" / label
        folder.mkdir(parents=True)
        Image.new("RGB", (32, 32), (value, 255 - value, value // 2)).save(folder / "x.png")
    result = evaluate_checkpoint(str(out), overrides=[
        "data.dataset=image_folder", f"data.root={tmp_path / 'images'}", "train.device=cpu"])
    assert result.num_samples == 4


def test_names_or_counts_of_the_wrong_length_are_refused(tmp_path: Path) -> None:
    src, _ = r32_file(tmp_path, "gpaco", C)
    with pytest.raises(UserError, match="3 class names given for a checkpoint with 4 classes"):
        convert_authors(src, classes=["a", "b", "c"]).checkpoint
    with pytest.raises(UserError, match="class counts"):
        convert_authors(src, class_counts=[1]).checkpoint


def test_converted_vit_records_its_backbone_options(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=C, img_size=32, patch_size=8,
                            depth=1, global_pool="avg")
    vit.mlp = gpaco_projection(192, 128, torch.nn.GELU)
    randomize(vit, 2).eval()
    src = save_vit_file(tmp_path / "checkpoint-99.pth", vit,
                        argparse.Namespace(model="vit_base_patch16", input_size=32))
    converted = convert_authors(src, backbone="timm:vit_tiny_patch16_224",
                                backbone_kwargs={"patch_size": 8, "depth": 1})
    ckpt = converted.checkpoint
    cfg = from_dict(ckpt["config"])
    assert cfg.model.backbone_kwargs == {"global_pool": "avg", "img_size": 32, "patch_size": 8,
                                         "depth": 1}
    assert (cfg.method, cfg.model.head, cfg.data.test_transform,
            cfg.data.image_size) == ("gpaco", "gelu", "imagenet_test", 32)
    with torch.no_grad():
        assert torch.equal(converted.model(_x()), vit(_x()))
    rebuilt = model_from_checkpoint(ckpt).model  # from the config's model.backbone_kwargs
    with torch.no_grad():
        assert torch.equal(rebuilt(_x()), vit(_x()))
