"""ViT backbones (global average pooling + fc_norm) and the MAE-recipe GPaCo / CE wrappers."""

from __future__ import annotations

import pytest
import torch

from gpaco.errors import UserError
from gpaco.models.gpaco import GPaCoModel
from gpaco.models.vit import CENTER_INIT_STD, create_vit, init_centers_
from gpaco.tasks.classification import methods


def gpaco_vit(backbone, num_classes, **options):
    """The authors' GPaCo MAE-ViT model as the ViT recipes build it (method=gpaco, head=gelu,
    model.classifier_init_std=2e-5)."""
    model = methods.build_model("gpaco", backbone, num_classes, head="gelu", **options)
    init_centers_(model.classifier)
    return model


def ce_vit(backbone, num_classes):
    """MAE's CE fine-tuning model as the CE ViT recipes build it."""
    model = methods.build_model("ce", backbone, num_classes)
    init_centers_(model.classifier)
    return model

pytest.importorskip("timm")


def test_micro_vit_pools_patch_tokens_without_cls_then_fc_norm() -> None:
    torch.manual_seed(0)
    vit = create_vit("vit_micro_patch4_32").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        tokens = vit.patch_embed(x)
        tokens = torch.cat([vit.cls_token.expand(3, -1, -1), tokens], dim=1) + vit.pos_embed
        for block in vit.blocks:
            tokens = block(tokens)
        expected = vit.fc_norm(tokens[:, 1:].mean(dim=1))
        got = vit(x)
    assert vit.feature_dim == 32 and got.shape == (3, 32)
    torch.testing.assert_close(got, expected)
    assert isinstance(vit.norm, torch.nn.Identity)
    assert vit.fc_norm.eps == 1e-6
    assert isinstance(vit.head, torch.nn.Identity)  # the wrapper owns the classifier


def test_drop_path_grows_linearly_to_the_rate_as_mae() -> None:
    vit = create_vit("vit_micro_patch4_32", drop_path_rate=0.2)
    rates = [float(b.drop_path1.drop_prob) if hasattr(b.drop_path1, "drop_prob") else 0.0
             for b in vit.blocks]
    assert rates == pytest.approx([0.0, 0.2])


def test_timm_names_and_prefix_give_the_paper_sizes() -> None:
    vit = create_vit("timm:vit_base_patch16_224", drop_path_rate=0.1)
    assert vit.feature_dim == 768 and len(vit.blocks) == 12
    assert tuple(vit.patch_embed.grid_size) == (14, 14) and vit.pos_embed.shape == (1, 197, 768)
    assert sum(p.numel() for p in vit.parameters()) == 85_798_656


def test_img_size_resizes_the_grid() -> None:
    vit = create_vit("vit_micro_patch4_32", img_size=16)
    assert tuple(vit.patch_embed.grid_size) == (4, 4) and vit.pos_embed.shape[1] == 17


@pytest.mark.parametrize("name", ["resnet50", "no_such_vit"])
def test_non_vit_names_are_user_errors(name: str) -> None:
    with pytest.raises(UserError):
        create_vit(name)


def test_pretrained_is_refused_with_a_pointer_to_the_loader() -> None:
    with pytest.raises(UserError, match="load_mae_checkpoint"):
        create_vit("vit_micro_patch4_32", pretrained=True)


def test_gpaco_vit_is_the_existing_wrapper_with_gelu_head_and_mae_center_init() -> None:
    torch.manual_seed(0)
    vit = create_vit("vit_base_patch16_224")
    model = gpaco_vit(vit, 1000)
    assert isinstance(model, GPaCoModel)
    acts = [type(m).__name__ for m in model.head]
    assert acts == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert [m.out_features for m in model.head if isinstance(m, torch.nn.Linear)] == [768, 768, 128]
    assert model.queue.size == 8192 and model.queue.dim == 128
    w = model.classifier.weight.detach()
    assert w.shape == (1000, 768)
    assert float(w.std()) == pytest.approx(CENTER_INIT_STD, rel=0.01)  # 768k samples
    assert float(w.mean().abs()) < 1e-7 and torch.all(model.classifier.bias == 0)


def test_gpaco_vit_train_step_shapes_and_queue() -> None:
    torch.manual_seed(0)
    model = gpaco_vit(create_vit("vit_micro_patch4_32"), 10, queue_size=16)
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    labels = torch.tensor([0, 1, 2, 3])
    out = model.forward_train(views, labels)
    assert out.features.shape == (8, 128) and out.center_logits.shape == (8, 10)
    out = model.forward_train(views, labels)  # the first step's 4 keys are now in the queue
    assert out.features.shape == (12, 128)
    assert model(views[0]).shape == (4, 10)


def test_ce_vit_head_init() -> None:
    model = ce_vit(create_vit("vit_micro_patch4_32"), 7)
    assert model.classifier.weight.shape == (7, 32) and torch.all(model.classifier.bias == 0)
    assert float(model.classifier.weight.detach().abs().max()) < 2e-4  # std 2e-5: |w| < 10 sigma
