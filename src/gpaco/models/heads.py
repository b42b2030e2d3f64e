"""Projection MLPs mapping the pooled backbone feature to the contrastive embedding."""

from __future__ import annotations

from torch import nn

from gpaco.errors import UserError

HEAD_KINDS = ("bn", "nobn", "gelu")


def projection_head(kind: str, in_dim: int, out_dim: int) -> nn.Sequential:
    """Build a projection MLP.

    Args:
        kind: "bn" = Linear-BN1d-ReLU-Linear (PaCo); "nobn" = Linear-ReLU-Linear-ReLU-Linear
            (GPaCo ResNets); "gelu" = Linear-GELU-Linear-GELU-Linear (GPaCo MAE-ViT).
        in_dim: pooled feature width; every hidden layer keeps this width, as in the papers.
        out_dim: embedding width (128 in the ImageNet-scale recipes, 32 for CIFAR ResNet-32 PaCo).
    """
    if kind == "bn":
        return nn.Sequential(
            nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(inplace=True),
            nn.Linear(in_dim, out_dim),
        )
    if kind in ("nobn", "gelu"):
        act = nn.ReLU if kind == "nobn" else nn.GELU
        return nn.Sequential(
            nn.Linear(in_dim, in_dim), act(), nn.Linear(in_dim, in_dim), act(),
            nn.Linear(in_dim, out_dim),
        )
    raise UserError(f"unknown projection head {kind!r}; choose one of {', '.join(HEAD_KINDS)}")
