"""Per-pixel GPaCo loss for semantic segmentation (paper-spec section 6).

Per image: labels are downsampled (nearest) to the feature map, ignored pixels get the dummy
class C, K pixel positions are drawn uniformly without replacement (ignored ones included),
and `paco_loss` runs with those K pixels as both anchors and contrast set: no queue, no second
view, no prior. Ignored pixels are negatives for the valid anchors but never anchors
themselves. The batch loss is the mean of the per-image losses.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses.paco import paco_loss


def downsample_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, H, W) int labels -> (N, h, w) by nearest neighbour (PyTorch's 'nearest' rule,
    the one mmsegmentation uses: source index floor(i * H / h))."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    resized = F.interpolate(labels[:, None].float(), size=size, mode="nearest")
    return resized[:, 0].to(labels.dtype)


def sample_pixels(
    num_pixels: int, num_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of `num_samples` distinct pixels drawn uniformly (all of them, in a random order,
    when num_samples is -1 or >= num_pixels). On the generator's device (CPU by default)."""
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(num_pixels, generator=generator, device=device)
    if num_samples < 0 or num_samples >= num_pixels:
        return order
    return order[:num_samples]


def pixel_paco_loss(
    embeddings: Tensor,
    center_logits: Tensor,
    labels: Tensor,
    *,
    alpha: float,
    temperature: float = 0.07,
    num_samples: int = 8192,
    generator: torch.Generator | None = None,
) -> Tensor:
    """GPaCo loss of a batch of pixel maps, a scalar (fp32 for fp16/bf16 inputs).

    Args:
        embeddings: (N, D, h, w) projection-branch output (normalised here, per pixel).
        center_logits: (N, C, h, w) classifier logits at the same resolution (not upsampled).
        labels: (N, H, W) int64 label map at input resolution; every value outside [0, C)
            (e.g. the ignore value 255) is void.
        alpha: weight of each sample positive.
        temperature: divides the pixel-pixel similarities only.
        num_samples: pixels drawn per image (K); -1 uses every pixel.
        generator: draws the pixel subsets; pass a seeded one for reproducible sampling.
    """
    if embeddings.shape[0] != center_logits.shape[0] or embeddings.shape[-2:] != center_logits.shape[-2:]:
        raise ValueError(
            f"embeddings {tuple(embeddings.shape)} and center_logits "
            f"{tuple(center_logits.shape)} must share batch and spatial size"
        )
    num_images, num_classes = center_logits.shape[:2]
    height, width = embeddings.shape[-2:]
    small = downsample_labels(labels, (height, width))
    # Any label outside [0, C) (the ignore value) becomes the dummy class C: it then has no
    # center, is never a positive of a real class, and `ignore_index=C` drops it as an anchor.
    dummy = torch.full_like(small, num_classes)
    small = torch.where((small >= 0) & (small < num_classes), small, dummy)

    losses = []
    for n in range(num_images):
        index = sample_pixels(height * width, num_samples, generator).to(embeddings.device)
        # Gather the K rows first: normalising all h*w pixels would be wasted work.
        feats = F.normalize(embeddings[n].flatten(1).T[index], dim=1)
        logits = center_logits[n].flatten(1).T[index]
        losses.append(
            paco_loss(
                feats,
                small[n].flatten()[index],
                logits,
                alpha=alpha,
                temperature=temperature,
                ignore_index=num_classes,
            )
        )
    return torch.stack(losses).mean()


class PixelPaCoLoss(nn.Module):
    """Module form of `pixel_paco_loss`: `criterion(embeddings, center_logits, labels)`.

    The generator (if any) is created once from `seed`, so a run draws a reproducible
    sequence of pixel subsets; with seed=None the global RNG is used.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float,
        temperature: float = 0.07,
        num_samples: int = 8192,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise UserError(f"num_classes must be >= 1, got {num_classes}")
        if alpha < 0:
            raise UserError(f"alpha must be >= 0, got {alpha}")
        if temperature <= 0:
            raise UserError(f"temperature must be > 0, got {temperature}")
        if num_samples == 0 or num_samples < -1:
            raise UserError(f"num_samples must be -1 (all pixels) or >= 1, got {num_samples}")
        self.num_classes = num_classes
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.num_samples = int(num_samples)
        self.seed = seed
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def forward(self, embeddings: Tensor, center_logits: Tensor, labels: Tensor) -> Tensor:
        if center_logits.shape[1] != self.num_classes:
            raise ValueError(
                f"center_logits has {center_logits.shape[1]} classes, expected {self.num_classes}"
            )
        return pixel_paco_loss(
            embeddings,
            center_logits,
            labels,
            alpha=self.alpha,
            temperature=self.temperature,
            num_samples=self.num_samples,
            generator=self.generator,
        )

    def get_extra_state(self) -> Any:
        # In the module's state_dict, so a checkpoint resumes the same sequence of pixel subsets.
        return None if self.generator is None else self.generator.get_state()

    def set_extra_state(self, state: Any) -> None:
        if state is not None and self.generator is not None:
            self.generator.set_state(state)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, alpha={self.alpha}, "
            f"temperature={self.temperature}, num_samples={self.num_samples}, seed={self.seed}"
        )
