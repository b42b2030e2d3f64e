from collections.abc import Callable

import pytest
import torch
from torch import nn

from gpaco.errors import UserError
from gpaco.models import create_backbone
from gpaco.models import (
    Classifier, GPaCoModel, PaCoModel, TrainOutput,
)

B, C, DIM, K = 4, 3, 5, 8


def _inputs() -> tuple[list[torch.Tensor], torch.Tensor]:
    return [torch.randn(B, 3, 8, 8), torch.randn(B, 3, 8, 8)], torch.tensor([0, 1, 2, 1])


def _all_grads_present(module: nn.Module) -> bool:
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_paco_train_output_shapes(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = PaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K)
    views, y = _inputs()
    out = model.forward_train(views, y)
    assert isinstance(out, TrainOutput)
    assert out.features.shape == (2 * B, DIM)  # queue still empty: no rows from it
    assert out.labels.tolist() == y.tolist() * 2
    assert out.center_logits.shape == (B, C)
    assert torch.allclose(out.features.norm(dim=1), torch.ones(2 * B))
    out2 = model.forward_train(views, y)
    assert out2.features.shape == (2 * B + B, DIM)
    assert out2.labels.tolist() == y.tolist() * 3
    # The queue rows of step 2 are the keys of step 1.
    assert torch.allclose(out2.features[2 * B:], out.features[B:2 * B])


def test_gpaco_train_output_shapes(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = GPaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K)
    views, y = _inputs()
    out = model.forward_train(views, y)
    assert out.features.shape == (2 * B, DIM)
    assert out.center_logits.shape == (2 * B, C)
    assert out.labels.tolist() == y.tolist() * 2
    for _ in range(2):
        out = model.forward_train(views, y)
    assert out.features.shape == (2 * B + K, DIM) and model.queue.is_full
    assert out.labels.shape == (2 * B + K,)


def test_classifier_train_output(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = Classifier(tiny_backbone(), C)
    views, y = _inputs()
    out = model.forward_train(views, y)
    assert out.features is None and out.labels is y
    assert out.center_logits.shape == (B, C)
    assert model.forward_train(views[0], y).center_logits.shape == (B, C)


@pytest.mark.parametrize("cls", [PaCoModel, GPaCoModel, Classifier])
def test_inference_returns_raw_logits(
    cls: type[nn.Module], tiny_backbone: Callable[..., nn.Module]
) -> None:
    kwargs = {} if cls is Classifier else {"dim": DIM, "queue_size": K}
    model = cls(tiny_backbone(), C, **kwargs).eval()
    x = torch.randn(B, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model.classifier(model.backbone(x)))


def test_normalize_feature_feeds_unit_features_to_classifier(
    tiny_backbone: Callable[..., nn.Module],
) -> None:
    model = GPaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K, normalize_feature=True).eval()
    x = torch.randn(B, 3, 8, 8)
    with torch.no_grad():
        expected = model.classifier(nn.functional.normalize(model.backbone(x), dim=1))
        assert torch.allclose(model(x), expected)


def test_paco_ema_update_before_keys(tiny_backbone: Callable[..., nn.Module]) -> None:
    m = 0.9
    model = PaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K, momentum=m)
    with torch.no_grad():  # make the online encoder differ from its copy
        for p in [*model.backbone.parameters(), *model.head.parameters()]:
            p.add_(torch.randn_like(p))
    online = [p.detach().clone() for p in model._online_params()]
    key_before = [p.detach().clone() for p in model._key_params()]
    views, y = _inputs()
    stale_keys = model._key_forward(views[1])
    out = model.forward_train(views, y)
    for new, old, o in zip(model._key_params(), key_before, online):
        assert torch.allclose(new, m * old + (1 - m) * o, atol=1e-6)
    # The keys in the contrast set come from the updated key encoder (train-mode BN uses batch
    # statistics, so recomputing them now gives the same values).
    fresh_keys = model._key_forward(views[1])
    assert torch.allclose(out.features[B:2 * B], fresh_keys, atol=1e-6)
    assert not torch.allclose(out.features[B:2 * B], stale_keys, atol=1e-4)


def test_eval_mode_forward_train_changes_no_state(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = PaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.forward_train(*_inputs())
    assert len(model.queue) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def _surrogate_loss(out: TrainOutput) -> torch.Tensor:
    torch.manual_seed(1)
    w = torch.randn_like(out.features)
    return (out.features * w).sum() + out.center_logits.pow(2).sum()


def test_paco_gradients_reach_online_not_key(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = PaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K)
    _surrogate_loss(model.forward_train(*_inputs())).backward()
    for part in (model.backbone, model.head, model.classifier):
        assert _all_grads_present(part)
    for p in model._key_params():
        assert not p.requires_grad and p.grad is None
    assert not model.queue.keys.requires_grad


def test_gpaco_gradients_reach_both_views(tiny_backbone: Callable[..., nn.Module]) -> None:
    model = GPaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K)
    out = model.forward_train(*_inputs())
    assert out.features[B:2 * B].requires_grad  # k carries gradient in GPaCo
    _surrogate_loss(out).backward()
    for part in (model.backbone, model.head, model.classifier):
        assert _all_grads_present(part)
    assert not model.queue.keys.requires_grad


def test_gpaco_joint_and_separate_forward_agree_in_eval(
    tiny_backbone: Callable[..., nn.Module],
) -> None:
    model = GPaCoModel(tiny_backbone(), C, dim=DIM, queue_size=0, joint_forward=True).eval()
    views, y = _inputs()
    with torch.no_grad():
        joint = model.forward_train(views, y)
        model.joint_forward = False
        separate = model.forward_train(views, y)
    assert torch.allclose(joint.features, separate.features, atol=1e-6)
    assert torch.allclose(joint.center_logits, separate.center_logits, atol=1e-5)


def test_backbone_without_feature_dim_is_refused() -> None:
    with pytest.raises(UserError, match="feature_dim"):
        Classifier(nn.Linear(3, 3), C)


def test_two_views_required(tiny_backbone: Callable[..., nn.Module]) -> None:
    views, y = _inputs()
    with pytest.raises(UserError):
        GPaCoModel(tiny_backbone(), C, dim=DIM, queue_size=K).forward_train(views[:1], y)


@pytest.mark.parametrize("wrapper", [PaCoModel, GPaCoModel])
def test_cifar_resnet_head_output_layer_keeps_the_backbones_fc_init(wrapper) -> None:
    """The authors' head ends in the CIFAR ResNet's own `fc` (Kaiming-normal, std sqrt(2/64) =
    0.177), not a default nn.Linear (uniform, std 1/sqrt(3 * 64) = 0.072)."""
    torch.manual_seed(0)
    weights = torch.cat([wrapper(create_backbone("resnet32"), 10, dim=32,
                                 queue_size=0).head[-1].weight.flatten() for _ in range(4)])
    assert weights.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.05)
    assert weights.abs().max().item() > 1 / 64 ** 0.5  # beyond the default init's bound
    first = wrapper(create_backbone("resnet32"), 10, dim=32, queue_size=0).head[0].weight
    assert first.abs().max().item() <= 1 / 64 ** 0.5  # a new layer: nn.Linear's default


def test_imagenet_and_supcon_resnet_heads_keep_the_default_linear_init() -> None:
    """torchvision's ResNets and the SupCon CIFAR ResNet-50 leave their fc at nn.Linear's init."""
    for name in ("resnet18", "resnet18_cifar"):
        head = GPaCoModel(create_backbone(name), 10, dim=128, queue_size=0).head
        assert head[-1].weight.abs().max().item() <= 1 / 512 ** 0.5
