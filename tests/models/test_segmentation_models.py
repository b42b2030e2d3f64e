"""Segmenter: head placement (stride 4 / aux stage), variants, local encoder weights."""

from __future__ import annotations

import pytest
import torch

from gpaco.errors import UserError
from gpaco.models.segmentation import Segmenter, create_segmenter, load_encoder_weights

C = 5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("arch,stride,aux_stride", [("deeplabv3plus", 8, 8),
                                                    ("deeplabv3plus", 16, 16),
                                                    ("upernet", None, 16)])
def test_heads_sit_at_stride_four_and_aux_on_stage_three(arch, stride, aux_stride) -> None:
    torch.manual_seed(0)
    model = create_segmenter(arch, "resnet18", C, decoder_channels=32, aux_channels=16,
                             encoder_output_stride=stride)
    x = torch.randn(2, 3, 64, 96)
    out = model.forward_train(x)
    assert out.logits.shape == (2, C, 16, 24)
    assert out.embeddings.shape == (2, 128, 16, 24)
    assert out.aux_logits.shape == (2, C, 64 // aux_stride, 96 // aux_stride)
    assert model.aux_head[0][0].in_channels == 256  # resnet18 res4
    loss = out.logits.sum() + out.embeddings.square().sum() + out.aux_logits.sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        full = model(x)
        assert full.shape == (2, C, 64, 96)
        small = model.forward_train(x).logits
    up = torch.nn.functional.interpolate(small, size=(64, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(full, up)


def test_baseline_has_no_projection_and_no_aux() -> None:
    model = create_segmenter("deeplabv3plus", "resnet18", C, decoder_channels=16,
                             projection_dim=None, aux=False)
    out = model.forward_train(torch.randn(2, 3, 32, 32))
    assert out.embeddings is None and out.aux_logits is None and model.projection is None
    assert isinstance(model, Segmenter)


def test_classifier_init_is_normal_001() -> None:
    model = create_segmenter("upernet", "resnet18", 150, decoder_channels=64)
    w = model.classifier.weight
    assert abs(w.std().item() - 0.01) < 0.002 and model.classifier.bias.abs().max() == 0


@pytest.mark.slow
def test_swin_tiny_upernet_timm_encoder() -> None:
    model = create_segmenter("upernet", "tu-swin_tiny_patch4_window7_224", C,
                             decoder_channels=32, img_size=64)
    out = model.forward_train(torch.randn(2, 3, 64, 64))
    assert out.logits.shape == (2, C, 16, 16)
    assert out.aux_logits.shape == (2, C, 4, 4)  # stage 3 of a Swin = stride 16
    assert model.aux_head[0][0].in_channels == 384


def test_local_weights_load_into_smp_and_timm_encoders(tmp_path) -> None:
    import timm
    import torchvision

    tv = torchvision.models.resnet18()
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}},
               tmp_path / "tv.pth")
    model = create_segmenter("deeplabv3plus", "resnet18", C, decoder_channels=16)
    dropped = load_encoder_weights(model.encoder, tmp_path / "tv.pth")
    assert dropped == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(model.encoder.conv1.weight, tv.conv1.weight)

    tm = timm.create_model("resnet18")
    torch.save(tm.state_dict(), tmp_path / "timm.pth")
    model = create_segmenter("upernet", "tu-resnet18", C, decoder_channels=16,
                             encoder_checkpoint=tmp_path / "timm.pth")
    torch.testing.assert_close(model.encoder.model.layer4[1].conv2.weight, tm.layer4[1].conv2.weight)


def test_bad_weights_and_names_are_user_errors(tmp_path) -> None:
    model = create_segmenter("deeplabv3plus", "resnet18", C, decoder_channels=16)
    with pytest.raises(UserError, match="does not exist"):
        load_encoder_weights(model.encoder, tmp_path / "none.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "partial.pth")
    with pytest.raises(UserError, match="partial.pth lacks"):
        load_encoder_weights(model.encoder, tmp_path / "partial.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth"):
        load_encoder_weights(model.encoder, tmp_path / "junk.pth")
    with pytest.raises(UserError, match="architecture"):
        create_segmenter("pspnet", "resnet18", C)
    with pytest.raises(UserError, match="output_stride"):
        create_segmenter("upernet", "resnet18", C, encoder_output_stride=8)


def test_swin_adamw_exempts_only_the_authors_keys() -> None:
    from gpaco.train.optimizer import decay_groups

    model = create_segmenter("upernet", "tu-swin_tiny_patch4_window7_224", C,
                             decoder_channels=16, aux_channels=8, img_size=64)
    no_decay, decay = decay_groups(model, 0.01)
    undecayed = {id(p) for p in no_decay["params"]}
    named = dict(model.named_parameters())
    tables = [n for n in named if "relative_position_bias_table" in n]
    norms = [n for n in named if "norm" in n]
    assert tables and norms and all(id(named[n]) in undecayed for n in tables + norms)
    assert len(undecayed) == len(tables) + len(norms)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    # biases and the heads' BN are decayed, as the authors' paramwise_cfg
    assert id(model.classifier.bias) not in undecayed
    assert id(model.decoder.bottleneck.bn.weight) not in undecayed


@pytest.mark.slow
def test_swin_weights_in_microsofts_release_layout_load_as_timms(tmp_path) -> None:
    """The ADE20K recipes name Microsoft's Swin files (patch merging at the end of a stage,
    index / mask buffers saved, `head.*`, under "model"): they load into the same weights as
    timm's layout of the same values."""
    import re

    import timm

    timm_state = timm.create_model("swin_tiny_patch4_window7_224", img_size=64).state_dict()
    original = {}
    for name, value in timm_state.items():  # timm -> Microsoft: the inverse of the loader's rule
        name = re.sub(r"^layers\.(\d+)\.downsample\.",
                      lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", name)
        original[name.replace("head.fc.", "head.")] = value
    original["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49).long()
    original["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 49, 49)
    assert "layers.0.downsample.reduction.weight" in original
    torch.save({"model": original}, tmp_path / "swin_tiny_patch4_window7_224.pth")
    torch.save(timm_state, tmp_path / "timm.pth")
    loaded = []
    for name in ("swin_tiny_patch4_window7_224.pth", "timm.pth"):
        model = create_segmenter("upernet", "tu-swin_tiny_patch4_window7_224", C,
                                 decoder_channels=32, img_size=64)
        load_encoder_weights(model.encoder, tmp_path / name)
        loaded.append(model.encoder.state_dict())
    assert loaded[0].keys() == loaded[1].keys()
    assert all(torch.equal(loaded[0][k], loaded[1][k]) for k in loaded[0])
    stage1 = "model.layers_1.downsample.reduction.weight"
    assert torch.equal(loaded[0][stage1], timm_state["layers.1.downsample.reduction.weight"])
