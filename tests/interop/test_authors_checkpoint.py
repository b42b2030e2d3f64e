"""Importing the authors' released checkpoint layouts into gpaco's models."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from _authors_layouts import (
    AuthorsMoCo, gpaco_projection, pooled_logits, r32_file, randomize, save_resnet_file,
    save_vit_file,
)
from gpaco.tasks.classification.convert import build_model_from_authors
from gpaco.errors import UserError
from gpaco.models import Classifier, GPaCoModel, PaCoModel, create_backbone
from gpaco.weights.authors import (
    load_authors_checkpoint, read_authors_checkpoint,
)
from gpaco.models.resnet_cifar import resnet32

C, K = 10, 16


def _r32_file(tmp_path: Path, layout: str) -> tuple[Path, AuthorsMoCo]:
    return r32_file(tmp_path, layout, C, K)


def _x(size: int = 32, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(7))


def _hand_loaded(wrapper: AuthorsMoCo, model: nn.Module) -> nn.Module:
    """The same weights put into gpaco's model module by module, without the mapper."""
    q = wrapper.encoder_q.state_dict()
    model.backbone.load_state_dict({k: v for k, v in q.items() if not k.startswith("fc.")})
    model.head.load_state_dict(wrapper.encoder_q.fc.state_dict())
    model.classifier.load_state_dict(wrapper.linear.state_dict())
    if isinstance(model, PaCoModel):
        kk = wrapper.encoder_k.state_dict()
        model.key_backbone.load_state_dict({k: v for k, v in kk.items() if not k.startswith("fc.")})
        model.key_head.load_state_dict(wrapper.encoder_k.fc.state_dict())
    return model.eval()


def test_the_saved_r32_file_has_the_authors_key_names(tmp_path: Path) -> None:
    path, _ = _r32_file(tmp_path, "paco")
    state = torch.load(path, weights_only=True)["state_dict"]
    for key, shape in [("module.encoder_q.conv1.weight", (16, 3, 3, 3)),
                       ("module.encoder_q.layer3.4.bn2.running_var", (64,)),
                       ("module.encoder_q.fc.1.running_mean", (64,)),  # PaCo's BN projection
                       ("module.encoder_q.fc.3.weight", (32, 64)),
                       ("module.encoder_k.fc.3.weight", (32, 64)),
                       ("module.linear.weight", (C, 64)), ("module.linear_k.bias", (C,)),
                       ("module.queue", (K, 32)), ("module.queue_l", (K,)),
                       ("module.queue_ptr", (1,))]:
        assert tuple(state[key].shape) == shape


def test_resnet32_paco_layout_maps_bit_for_bit(tmp_path: Path) -> None:
    path, wrapper = _r32_file(tmp_path, "paco")
    model, report = build_model_from_authors(path)
    assert isinstance(model, PaCoModel) and model.queue.size == K
    model.eval()
    hand = _hand_loaded(wrapper, PaCoModel(create_backbone("resnet32"), C, dim=32,
                                           queue_size=K, head="bn"))
    x = _x()
    with torch.no_grad():
        logits = model(x)
        assert torch.equal(logits, hand(x))
        assert torch.equal(logits, pooled_logits(wrapper.encoder_q, wrapper.linear, x))
        # the key encoder is the file's encoder_k, not a copy of encoder_q
        assert torch.equal(model._encode_keys(x), hand._encode_keys(x))
        assert not torch.equal(model._encode_keys(x), nn.functional.normalize(
            model.head(model.backbone(x)), dim=1))
    assert len(model.queue) == 0  # the authors' queue (random at start) is not imported
    line = str(report)
    assert "\n" not in line and "queue: 3 tensors" in line
    assert "linear_k (unused momentum classifier): 2 tensors" in line


def test_resnet32_gpaco_layout_maps_bit_for_bit(tmp_path: Path) -> None:
    path, wrapper = _r32_file(tmp_path, "gpaco")
    ckpt = read_authors_checkpoint(path)
    assert (ckpt.method, ckpt.head, ckpt.dim, ckpt.backbone) == ("gpaco", "nobn", 32, "resnet32")
    model, _ = build_model_from_authors(ckpt)
    assert isinstance(model, GPaCoModel)
    model.eval()
    hand = _hand_loaded(wrapper, GPaCoModel(create_backbone("resnet32"), C, dim=32,
                                            queue_size=K, head="nobn"))
    x = _x()
    with torch.no_grad():
        assert torch.equal(model(x), hand(x))
        assert torch.equal(model(x), pooled_logits(wrapper.encoder_q, wrapper.linear, x))
        assert torch.equal(model.head(model.backbone(x)), wrapper.encoder_q.fc(
            model.backbone(x)))


def test_resnet50_imagenet_gpaco_layout(tmp_path: Path) -> None:
    """torchvision resnet50 names under encoder_q, 2048-2048-2048-128 projection, no BN."""
    encoder = torchvision.models.resnet50(num_classes=128)
    encoder.fc = gpaco_projection(2048, 128)
    randomize(encoder, 4).eval()
    wrapper = AuthorsMoCo(encoder, randomize(nn.Linear(2048, C), 5), K, 128, C)
    path = save_resnet_file(tmp_path / "gpaco_r50_imagenetlt.pth.tar", wrapper, "resnet50")
    model, report = build_model_from_authors(path)
    model.eval()
    x = _x(32, 2)
    with torch.no_grad():
        assert torch.equal(model(x), pooled_logits(encoder, wrapper.linear, x))
    assert isinstance(model, GPaCoModel) and model.head[4].out_features == 128
    assert report.loaded == len(model.state_dict()) - 4  # all but the queue's 4 buffers


def test_their_supcon_style_cifar_resnet18_is_told_from_torchvision_by_its_stem(
        tmp_path: Path) -> None:
    """Their resnet_big.resnet18 (3x3 stride-1 stem) is gpaco's resnet18_cifar."""
    from gpaco.models.resnet_big import resnet18_cifar

    encoder = resnet18_cifar()
    encoder.fc = gpaco_projection(512, 128)
    randomize(encoder, 8).eval()
    wrapper = AuthorsMoCo(encoder, randomize(nn.Linear(512, C), 9), K, 128, C)
    path = save_resnet_file(tmp_path / "gpaco_cifar_r18.pth.tar", wrapper, "resnet18")
    state = torch.load(path, weights_only=True)["state_dict"]
    assert tuple(state["module.encoder_q.layer2.0.shortcut.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(state["module.encoder_q.conv1.weight"].shape) == (64, 3, 3, 3)
    model, _ = build_model_from_authors(path)
    assert read_authors_checkpoint(path).backbone == "resnet18_cifar"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(_x()), pooled_logits(encoder, wrapper.linear, _x()))


def test_paco_file_into_other_wrappers(tmp_path: Path) -> None:
    path, wrapper = _r32_file(tmp_path, "paco")
    gp = GPaCoModel(create_backbone("resnet32"), C, dim=32, queue_size=K, head="bn")
    report = load_authors_checkpoint(gp, path)
    assert "key encoder" in str(report) and "key projection head" in str(report)
    clf = Classifier(create_backbone("resnet32"), C).eval()
    report = load_authors_checkpoint(clf, path)
    assert "projection head" in str(report)
    x = _x()
    with torch.no_grad():
        assert torch.equal(clf(x), pooled_logits(wrapper.encoder_q, wrapper.linear, x))


def test_parts_gpaco_does_not_know_are_dropped_and_named(tmp_path: Path) -> None:
    path, _ = _r32_file(tmp_path, "gpaco")
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["module.aux_head.weight"] = torch.ones(3, 64)
    torch.save(raw, path)
    model = GPaCoModel(create_backbone("resnet32"), C, dim=32, queue_size=K)
    line = str(load_authors_checkpoint(model, path))
    assert line.endswith("dropped queue: 3 tensors, unknown part 'aux_head': 1 tensor")


def test_gpaco_file_into_paco_starts_the_key_encoder_as_the_online_one(tmp_path: Path) -> None:
    path, _ = _r32_file(tmp_path, "gpaco")
    model = PaCoModel(create_backbone("resnet32"), C, dim=32, queue_size=K, head="nobn")
    report = load_authors_checkpoint(model, path)
    assert "key encoder = online encoder" in str(report)
    for a, b in zip(model.key_backbone.state_dict().values(), model.backbone.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(model.key_head[4].weight, model.head[4].weight)


def test_projection_of_another_width_is_left_as_built_and_said(tmp_path: Path) -> None:
    path, _ = _r32_file(tmp_path, "gpaco")
    model = GPaCoModel(create_backbone("resnet32"), C, dim=128, queue_size=K)
    before = model.head[4].weight.clone()
    report = load_authors_checkpoint(model, path)
    assert torch.equal(model.head[4].weight, before)
    assert "projection head (shaped unlike the model's)" in str(report)


@pytest.mark.parametrize("gpaco_layout", [True, False], ids=["gpaco-vit", "mae-vit"])
def test_mae_vit_layout(tmp_path: Path, gpaco_layout: bool) -> None:
    timm = pytest.importorskip("timm")
    spec = dict(img_size=32, patch_size=8, depth=2, global_pool="avg")
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=C, **spec)
    if gpaco_layout:  # their VisionTransformer_paco: + mlp (GELU, 128-d) + queue buffers
        vit.mlp = gpaco_projection(192, 128, nn.GELU)
        vit.register_buffer("queue", torch.randn(K, 128))
        vit.register_buffer("queue_l", torch.randint(0, C, (K,)))
        vit.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
    randomize(vit, 6).eval()
    args = argparse.Namespace(model="vit_base_patch16", input_size=32, global_pool=True,
                              nb_classes=C, drop_path=0.1, output_dir="workdir/mae_base_gpaco")
    path = save_vit_file(tmp_path / "checkpoint-99.pth", vit, args)
    ckpt = read_authors_checkpoint(path)
    assert ckpt.backbone == "timm:vit_base_patch16_224"  # from args.model
    assert ckpt.backbone_kwargs == {"global_pool": "avg", "img_size": 32}
    assert ckpt.meta["args"]["output_dir"] == "workdir/mae_base_gpaco"
    model, report = build_model_from_authors(ckpt, backbone="timm:vit_tiny_patch16_224",
                                             patch_size=8, depth=2)
    assert isinstance(model, GPaCoModel if gpaco_layout else Classifier)
    model.eval()
    x = _x(32, 2)
    with torch.no_grad():
        assert torch.equal(model(x), vit(x))  # head(fc_norm(mean of patch tokens))
    if gpaco_layout:
        assert model.head[1].__class__ is nn.GELU and "queue" in str(report)


def test_vit_file_into_a_base_vit_is_refused_naming_both(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=C, img_size=32, patch_size=8,
                            depth=1, global_pool="avg")
    path = save_vit_file(tmp_path / "v.pth", vit, argparse.Namespace(model="vit_tiny_patch16"))
    with pytest.raises(UserError, match="arch 'vit_tiny_patch16' has no gpaco backbone"):
        build_model_from_authors(path)
    model = Classifier(create_backbone("timm:vit_tiny_patch16_224", img_size=32, patch_size=8,
                                       depth=2, global_pool="avg"), C)
    with pytest.raises(UserError, match=r"arch vit_tiny_patch16\) does not fit the model's "
                                        r"VisionTransformer: missing backbone\.blocks\.1"):
        load_authors_checkpoint(model, path)


def test_wrong_backbone_and_wrong_classes_name_both(tmp_path: Path) -> None:
    path, _ = _r32_file(tmp_path, "gpaco")
    small = GPaCoModel(create_backbone("resnet20"), C, dim=32, queue_size=K)
    with pytest.raises(UserError, match=r"\(arch resnet32\) does not fit the model's ResNetCifar"
                                        r": unexpected backbone\.layer1\.3"):
        load_authors_checkpoint(small, path)
    with pytest.raises(UserError, match=f"the file's classifier has {C} classes on 64-d "
                                        "features, the model's 100 classes on 64-d"):
        load_authors_checkpoint(Classifier(create_backbone("resnet32"), 100), path)
    with pytest.raises(UserError, match="not a gpaco wrapper"):
        load_authors_checkpoint(nn.Linear(2, 2), path)


def test_a_code_running_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    path = tmp_path / "evil.pth.tar"
    torch.save({"epoch": 1, "arch": "resnet32", "state_dict": {}, "extra": Payload()}, path)
    with pytest.raises(UserError, match=r"refusing to read .*Unsupported global: GLOBAL "
                                        r"builtins\.exec|refusing to read .*exec") as err:
        read_authors_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.read_text() == "ran"


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    good, _ = _r32_file(tmp_path, "gpaco")
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}, protocol=2))
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"weights": torch.ones(2)}, unrelated)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.ones(3), tensor)
    no_encoder = tmp_path / "plain_resnet.pth"
    torch.save({"state_dict": resnet32().state_dict()}, no_encoder)
    gpaco_ckpt = tmp_path / "gpaco.pt"
    torch.save({"model": {}, "config": {}, "epoch": 1}, gpaco_ckpt)
    cases = {truncated: "cannot read checkpoint", plain: "refusing to read|cannot read",
             unrelated: "not one of the authors' checkpoints", tensor: "holds a Tensor",
             no_encoder: "no `encoder_q` weights", gpaco_ckpt: "already a gpaco checkpoint",
             tmp_path / "missing.pth": "checkpoint not found"}
    for path, message in cases.items():
        with pytest.raises(UserError, match=message) as err:
            read_authors_checkpoint(path)
        assert "\n" not in str(err.value), path
