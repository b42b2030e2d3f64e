"""The authors' checkpoint layouts, rebuilt from their wrappers' attribute names and shapes.

PaCo/GPaCo `moco/builder.py` keep `encoder_q` (the backbone, whose `fc` became the projection
MLP), `linear` (classifier on the pooled feature), PaCo also `encoder_k` + `linear_k`, and the
buffers `queue` (K, dim), `queue_l` (K,), `queue_ptr` (1,). The scripts save
`{"epoch", "arch", "state_dict": DDP(model).state_dict(), "optimizer", "best_acc"}`, hence the
`module.` prefix. The MAE-ViT scripts save `{"model", "optimizer", "epoch", "scaler", "args"}`
with a timm VisionTransformer (+ `mlp`, queue for GPaCo) and no prefix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from gpaco.data.transforms import build_transform


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Every float parameter and buffer random (positive running_var), so nothing is trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point():
                continue
            values = torch.randn(t.shape, generator=g) * 0.1
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            elif name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "norm.weight")):
                values = values + 1.0
            t.copy_(values)
    return module


def paco_projection(in_dim: int, dim: int) -> nn.Sequential:
    """PaCo's `fc`: Linear-BN1d-ReLU-Linear -> keys fc.0, fc.1 (BN), fc.3."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(),
                         nn.Linear(in_dim, dim))


def gpaco_projection(in_dim: int, dim: int, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """GPaCo's `fc` (ReLU) / the MAE-ViT `mlp` (GELU): keys 0, 2, 4."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), act(), nn.Linear(in_dim, in_dim), act(),
                         nn.Linear(in_dim, dim))


class AuthorsMoCo(nn.Module):
    """The attribute layout of their MoCo wrapper (not its forward)."""

    def __init__(self, encoder_q: nn.Module, linear: nn.Linear, queue_size: int, dim: int,
                 num_classes: int, encoder_k: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder_q = encoder_q
        if encoder_k is not None:
            self.encoder_k = encoder_k
        self.linear = linear
        if encoder_k is not None:
            self.linear_k = nn.Linear(linear.in_features, linear.out_features)
        self.register_buffer("queue", torch.randn(queue_size, dim))
        self.register_buffer("queue_l", torch.randint(0, num_classes, (queue_size,)))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


class DDP(nn.Module):
    """Stands in for DistributedDataParallel: its state_dict keys gain `module.`."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def save_resnet_file(path: Path, wrapper: AuthorsMoCo, arch: str) -> Path:
    torch.save({"epoch": 400, "arch": arch, "state_dict": DDP(wrapper).state_dict(),
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "params": [0, 1]}]},
                "best_acc": torch.tensor(52.1)}, path)
    return path


def save_vit_file(path: Path, vit: nn.Module, args: argparse.Namespace) -> Path:
    torch.save({"model": vit.state_dict(), "optimizer": {"state": {}, "param_groups": []},
                "epoch": 99, "scaler": {"scale": 65536.0}, "args": args}, path)
    return path


def r32_file(folder: Path, layout: str, num_classes: int = 10, queue_size: int = 16,
             seed: int = 1) -> tuple[Path, AuthorsMoCo]:
    """A CIFAR ResNet-32 file of `layout` "paco" or "gpaco" (dim 32, as their scripts).

    Their resnet_cifar.resnet32 has gpaco's key names plus `fc` (here the projection).
    """
    from gpaco.models.resnet_cifar import resnet32

    proj = paco_projection if layout == "paco" else gpaco_projection

    def encoder(s: int) -> nn.Module:
        net = resnet32()
        net.fc = proj(64, 32)
        return randomize(net, s).eval()

    k = encoder(seed + 1) if layout == "paco" else None
    wrapper = AuthorsMoCo(encoder(seed), randomize(nn.Linear(64, num_classes), seed + 2),
                          queue_size, 32, num_classes, encoder_k=k)
    return save_resnet_file(folder / f"{layout}_r32_{seed}.pth.tar", wrapper, "resnet32"), wrapper


def pooled_logits(encoder: nn.Module, linear: nn.Linear, x: Tensor) -> Tensor:
    """The authors' test-time logits: `linear` on the encoder's avgpool output (a forward hook)."""
    captured: list[Tensor] = []
    handle = encoder.avgpool.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        encoder(x)
    finally:
        handle.remove()
    return linear(captured[0].flatten(1))


def val_folder(root: Path) -> tuple[list[Path], torch.Tensor]:
    """root/val/<class>/<image>, 3 classes x 2 PNGs of distinct colours; the files and their
    cifar_test tensors."""
    files = []
    for label, v in (("a", 20), ("b", 120), ("c", 220)):
        for j in range(2):
            path = root / "val" / label / f"{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (v, 255 - v, 40 * j)).save(path)
            files.append(path)
    transform = build_transform("cifar_test", image_size=32)
    return files, torch.stack([transform(Image.open(f).convert("RGB")) for f in files])

