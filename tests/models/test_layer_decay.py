"""Layer ids for every backbone family, checked against timm's `param_groups_layer_decay`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gpaco.cli import main
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.errors import UserError
from gpaco.models.backbones import create_backbone
from gpaco.models.classifier import Classifier
from gpaco.models.layer_decay import layer_decay_param_groups, layer_ids
from gpaco.models.paco import PaCoModel

timm = pytest.importorskip("timm")
from timm.optim import param_groups_layer_decay  # noqa: E402  (needs timm)

DECAY = 0.75


def _timm_groups(model: nn.Module) -> dict[str, tuple[float, float]]:
    """timm's {name: (lr scale, weight decay)}."""
    names = {id(p): n for n, p in model.named_parameters()}
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    groups = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=DECAY,
                                      no_weight_decay_list=skip)
    return {names[id(p)]: (g["lr_scale"], g["weight_decay"]) for g in groups for p in g["params"]}


def _ours(model: nn.Module) -> dict[str, tuple[float, float]]:
    groups = layer_decay_param_groups(model, weight_decay=0.05, layer_decay=DECAY)
    return {n: (g["lr_scale"], g["weight_decay"]) for g in groups for n in g["param_names"]}


def _assert_same(ours: dict[str, tuple[float, float]], theirs: dict[str, tuple[float, float]]):
    assert ours.keys() == theirs.keys()
    for name, (scale, wd) in ours.items():
        assert math.isclose(scale, theirs[name][0]), name
        assert wd == theirs[name][1], name


def _partition(groups: dict[str, tuple[float, float]]) -> set[frozenset[str]]:
    """Which names share an lr scale."""
    by_scale: dict[float, set[str]] = {}
    for name, (scale, _) in groups.items():
        by_scale.setdefault(round(scale, 12), set()).add(name)
    return {frozenset(names) for names in by_scale.values()}


@pytest.mark.parametrize("name", ["convnext_atto", "resnet18"])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_a_bare_timm_model_gets_timms_groups(name, num_classes):
    model = timm.create_model(name, num_classes=num_classes)
    _assert_same(_ours(model), _timm_groups(model))


def test_gpacos_torchvision_resnet18_groups_as_timms_resnet18():
    """Same parameter names (conv1, bn1, layer<i>.<j>, fc replaced): same layers and scales."""
    ours = _ours(create_backbone("resnet18"))
    _assert_same(ours, _timm_groups(timm.create_model("resnet18", num_classes=0)))
    assert len({s for s, _ in ours.values()}) == 9  # stem + 8 blocks


@pytest.mark.parametrize("backbone", ["resnet20", "resnet18_cifar"])
def test_gpacos_cifar_resnets_follow_timms_resnet_rule(backbone):
    """The CIFAR / SupCon ResNets, grouped by timm with timm's own ResNet matcher attached."""
    model = create_backbone(backbone)
    ours = _ours(model)
    rule = timm.create_model("resnet18", num_classes=0).group_matcher(coarse=False)
    model.group_matcher = lambda coarse=False: rule
    _assert_same(ours, _timm_groups(model))
    blocks = sum(len(getattr(model, f"layer{i}", [])) for i in range(1, 5))
    assert len({s for s, _ in ours.values()}) == blocks + 1


@pytest.mark.parametrize("name", ["convnext_atto", "resnet18"])
def test_a_wrapped_backbone_keeps_timms_groups_and_puts_the_classifier_on_top(name):
    """Classifier(timm model) groups as timm groups the same model with its own classifier:
    gpaco's `classifier` where timm has its head's fc, at the top layer (scale 1)."""
    wrapped = _ours(Classifier(create_backbone(f"timm:{name}"), 10))
    own = timm.create_model(name, num_classes=10)
    fc = own.get_classifier()
    fc_names = {n for n, p in own.named_parameters() if any(p is q for q in fc.parameters())}
    prefix = next(iter(fc_names)).rsplit(".", 1)[0]
    renamed = {(n.replace(prefix, "classifier", 1) if n in fc_names else f"backbone.{n}"): v
               for n, v in _timm_groups(own).items()}
    _assert_same(wrapped, renamed)
    assert wrapped["classifier.weight"] == (1.0, 0.05)
    # the backbone part has the bare backbone's layers
    bare = _timm_groups(timm.create_model(name, num_classes=0))
    backbone_part = {n.removeprefix("backbone."): v for n, v in wrapped.items()
                     if n.startswith("backbone.")}
    assert _partition(backbone_part) == _partition(bare)


def test_paco_head_and_centers_on_top_and_the_key_encoder_left_out():
    model = PaCoModel(create_backbone("resnet20"), 10, dim=8, queue_size=16)
    ids, top = layer_ids(model)
    assert not any(n.startswith("key_") for n in ids)
    assert {n for n, i in ids.items() if i == top} == {
        n for n, _ in model.named_parameters() if n.startswith(("classifier.", "head."))}
    bare, bare_top = layer_ids(create_backbone("resnet20"))
    assert top == bare_top + 1
    assert all(ids[f"backbone.{n}"] == i for n, i in bare.items())


def test_a_model_without_layers_is_a_one_line_user_error():
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
            self.classifier = nn.Linear(4, 2)

    with pytest.raises(UserError, match="Sequential has none") as err:
        layer_decay_param_groups(Flat())
    assert "\n" not in str(err.value)


def test_cli_trains_convnext_with_layer_decay(tmp_path: Path):
    out = tmp_path / "run"
    assert main(["train", "model.backbone=timm:convnext_atto", "optim.name=adamw",
                 "optim.lr=0.001", "optim.layer_decay=0.75", "epochs=1",
                 "train.max_steps_per_epoch=3", "data.batched_augment=false",
                 "data.image_size=64", "train.batch_size=16", "train.device=cpu",
                 "output.progress=none", "output.tensorboard=false", f"output.dir={out}"]) == 0
    groups = load_checkpoint(out / "last.pt")["optimizer"]["param_groups"]
    scales = {round(g["lr_scale"], 12) for g in groups}
    assert len(scales) >= 4 and max(scales) == 1.0
    assert min(scales) == pytest.approx(DECAY ** (len(scales) - 1))
    assert all(torch.isfinite(torch.tensor(g["lr"])) for g in groups)


def test_a_segmenter_decays_its_smp_resnet_encoder_and_puts_the_heads_on_top():
    pytest.importorskip("segmentation_models_pytorch")
    from gpaco.models.segmentation import create_segmenter

    model = create_segmenter("upernet", "resnet18", 5, decoder_channels=32)
    ids, top = layer_ids(model)
    bare, bare_top = layer_ids(create_backbone("resnet18"))
    assert {n.removeprefix("encoder."): i for n, i in ids.items()
            if n.startswith("encoder.")} == bare
    assert top == bare_top + 1
    assert {n.split(".")[0] for n, i in ids.items() if i == top} == {
        "decoder", "classifier", "projection", "aux_head"}
