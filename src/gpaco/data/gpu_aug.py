"""Batched augmentations with per-sample random parameters, on CPU or CUDA tensors.

Every op maps a float (B, C, H, W) batch in [0, 1] to another one and is called as
`op(x, generator=None)`. All random numbers come from `torch.rand(..., generator=g,
device=x.device)`, so a seeded generator on the batch's device makes the output reproducible.

Design rules (the aim is a whole CIFAR training step in a few ms on one GPU):
- no Python loop over the samples of a batch: every op runs on the whole batch, and a sample
  that should not be changed gets a no-op parameter or is restored with `torch.where`;
- no host synchronisation: no `.item()`, `.cpu()`, boolean indexing or data-dependent shapes;
  constant tables are moved to the device once and cached.

`build_gpu_transform(name)` gives the GPU twins of the CPU pipelines in `gpaco.data.transforms`.
Colour ops expect 3 channels (the datasets store grey images as RGB).

Eager mode is launch-bound: on one H200 (torch 2.11) one CIFAR view of batch 128 takes ~3 ms
(~170 small kernels), the two views of a PaCo step ~6.3 ms. The pipelines capture in a CUDA
graph (fixed shapes, `graph.register_generator_state(g)` for a custom generator; new random
numbers on every replay): the same two views then take ~0.76 ms.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from gpaco.data.transforms import CIFAR_MEAN, CIFAR_STD
from gpaco.errors import UserError

Generator = torch.Generator | None

__all__ = [
    "AutoAugmentCIFAR10",
    "CIFAR10_POLICY",
    "ColorJitter",
    "Cutout",
    "GPUCompose",
    "GPUOp",
    "GaussianBlur",
    "Grayscale",
    "HFlip",
    "Normalize",
    "RandomCropPad",
    "RandomResizedCrop",
    "apply_op",
    "build_gpu_transform",
    "to_float_nchw",
    "GPU_TRANSFORM_NAMES",
]


def to_float_nchw(x: Tensor) -> Tensor:
    """uint8 or float (B, H, W, C) or (B, C, H, W) -> float32 (B, C, H, W) in [0, 1].

    The layout is channels-last when the last dim has 1 or 3 entries and dim 1 does not.
    uint8 is scaled by 1/255; float input is taken to be in [0, 1] already.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a 4-d image batch, got shape {tuple(x.shape)}")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return x.float().div_(255.0).contiguous()
    return x.float().contiguous()


_CONSTS: dict[tuple[tuple[float, ...], torch.dtype, torch.device], Tensor] = {}


def _const(values: Sequence[float], device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A small constant tensor on `device`, copied there once (a per-call copy could stall the host)."""
    key = (tuple(float(v) for v in values), dtype, torch.device(device))
    if key not in _CONSTS:
        _CONSTS[key] = torch.tensor(key[0], dtype=dtype).to(device)
    return _CONSTS[key]


def _rand(shape: tuple[int, ...], x: Tensor, generator: Generator) -> Tensor:
    return torch.rand(shape, generator=generator, device=x.device)


def _mask(m: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1), to broadcast a per-sample choice over images."""
    return m.view(-1, 1, 1, 1)


def _gray(x: Tensor) -> Tensor:
    """ITU-R 601-2 luma, as torchvision's rgb_to_grayscale: (B, 3, H, W) -> (B, 1, H, W)."""
    r, g, b = x.unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)  # same op order


class GPUOp(nn.Module):
    """Base class: `op(x, generator)` with x float (B, C, H, W)."""

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class Normalize(GPUOp):
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self._device_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        if self.mean.device == x.device:
            mean, std = self.mean, self.std
        else:  # module not moved with .to(): copy the constants once per device, not per call
            if x.device not in self._device_cache:
                self._device_cache[x.device] = (self.mean.to(x.device), self.std.to(x.device))
            mean, std = self._device_cache[x.device]
        return (x - mean) / std


class RandomCropPad(GPUOp):
    """Zero-pad by `padding` then take a random `size` crop (torchvision RandomCrop(size, padding)).

    Done as one gather with per-sample integer offsets (the airbench approach).
    """

    def __init__(self, size: int | None = None, padding: int = 4) -> None:
        super().__init__()
        self.size = size
        self.padding = padding

    def sample_offsets(self, x: Tensor, generator: Generator = None) -> tuple[Tensor, Tensor]:
        """Per-sample (dy, dx) offsets into the padded image, uniform in [0, Hp - size]."""
        b, _, h, w = x.shape
        oh, ow = (self.size, self.size) if self.size else (h, w)
        nh, nw = h + 2 * self.padding - oh + 1, w + 2 * self.padding - ow + 1
        r = _rand((2, b), x, generator)
        dy = (r[0] * nh).long().clamp_(max=nh - 1)
        dx = (r[1] * nw).long().clamp_(max=nw - 1)
        return dy, dx

    def apply(self, x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p = self.padding
        oh, ow = (self.size, self.size) if self.size else (h, w)
        xp = F.pad(x, (p, p, p, p)) if p else x
        hp, wp = h + 2 * p, w + 2 * p
        rows = torch.arange(oh, device=x.device) + dy[:, None]
        cols = torch.arange(ow, device=x.device) + dx[:, None]
        idx = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, oh * ow).expand(b, c, oh * ow)
        return xp.reshape(b, c, hp * wp).gather(2, idx).view(b, c, oh, ow)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        return self.apply(x, *self.sample_offsets(x, generator))


class HFlip(GPUOp):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        flip = _rand((x.shape[0],), x, generator) < self.p
        return torch.where(_mask(flip), x.flip(-1), x)


class RandomResizedCrop(GPUOp):
    """torchvision RandomResizedCrop with per-sample boxes, resampled by `roi_align`.

    Box sampling follows torchvision: up to `attempts` tries of (area, log-ratio), the first that
    fits wins, else the ratio-clamped centre crop; all tries are drawn at once. `roi_align` with
    aligned=True samples bin centres at the same coordinates as bilinear resize with
    align_corners=False (and averages several points per bin when shrinking, a mild antialias).
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        attempts: int = 10,
    ) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale = scale
        self.ratio = ratio
        self.attempts = attempts

    def _fallback(self, h: int, w: int) -> tuple[int, int, int, int]:
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def sample_boxes(self, x: Tensor, generator: Generator = None) -> Tensor:
        """Per-sample boxes (B, 4) as float (top, left, height, width) in pixels."""
        b, _, h, w = x.shape
        r = _rand((4, b, self.attempts), x, generator)
        area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * r[0])
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(lo + (hi - lo) * r[1])
        cw = torch.sqrt(area * aspect).round()
        ch = torch.sqrt(area / aspect).round()
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = ok.to(torch.uint8).argmax(1, keepdim=True)  # first fitting try (0 if none)
        cw, ch = cw.gather(1, first)[:, 0], ch.gather(1, first)[:, 0]
        top = (r[2].gather(1, first)[:, 0] * (h - ch + 1)).floor()
        left = (r[3].gather(1, first)[:, 0] * (w - cw + 1)).floor()
        found = ok.any(1)
        ft, fl, fh, fw = self._fallback(h, w)
        box = torch.stack([top, left, ch, cw], 1)
        fallback = _const((ft, fl, fh, fw), x.device)
        return torch.where(found[:, None], box, fallback)

    def apply(self, x: Tensor, boxes: Tensor) -> Tensor:
        top, left, ch, cw = boxes.unbind(1)
        idx = torch.arange(x.shape[0], device=x.device, dtype=x.dtype)
        rois = torch.stack([idx, left, top, left + cw, top + ch], 1).to(x.dtype)
        return roi_align(x, rois, self.size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        return self.apply(x, self.sample_boxes(x, generator))


def _rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB -> HSV (Pillow's / torchvision's convention; h in [0, 1)), batched."""
    r, g, b = x.unbind(1)
    minc, maxc = torch.aminmax(x, dim=1)
    crange = maxc - minc
    flat = crange == 0  # grey pixels: h = s = 0, and no division by zero
    s = crange / torch.where(flat, 1.0, maxc)
    d = torch.where(flat, 1.0, crange)
    h = torch.where(
        maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d)
    )
    h = torch.remainder(h / 6.0, 1.0)
    return torch.stack((h, s, maxc), 1)


def _hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Closed form of the piecewise HSV->RGB map: c_n = v - v s clamp(min(k, 4 - k), 0, 1),
    k = (n + 6h) mod 6 with n = 5, 3, 1 for r, g, b (same values as torchvision's table lookup)."""
    h, s, v = hsv[:, 0:1], hsv[:, 1:2], hsv[:, 2:3]
    n = _const((5.0, 3.0, 1.0), hsv.device, hsv.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + 6.0 * h, 6.0)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def adjust_hue(x: Tensor, hue: Tensor) -> Tensor:
    """Shift hue by per-sample `hue` (B,) in [-0.5, 0.5] (torchvision adjust_hue on float images)."""
    hsv = _rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0:1] + _mask(hue), 1.0)
    return _hsv_to_rgb(torch.cat([h, hsv[:, 1:]], 1)).clamp(0.0, 1.0)


class ColorJitter(GPUOp):
    """RandomApply(ColorJitter(b, c, s, h), p) with per-sample factors and per-sample random order.

    Brightness, contrast and saturation are blends `x f + d (1 - f)` with d = 0, the mean grey
    level or the grey image, so every position of a sample's order is one blend step whose
    weights are chosen per sample. Hue is the expensive one, so it runs once for the batch: each
    sample's ops that come before hue fill three "pre" steps and those after it three "post"
    steps (unused steps have f = 1, an exact no-op). With hue = 0 there are 4 steps.
    """

    def __init__(
        self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0, p: float = 1.0
    ) -> None:
        super().__init__()
        self.ranges = [self._range(brightness), self._range(contrast), self._range(saturation)]
        self.hue = hue
        self.p = p

    @staticmethod
    def _range(v: float) -> tuple[float, float]:
        return (max(0.0, 1.0 - v), 1.0 + v)

    def sample(self, x: Tensor, generator: Generator = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-sample factors (B, 3) for b/c/s, hue shifts (B,), order (B, 4) (op 3 = hue), apply mask (B,)."""
        r = _rand((x.shape[0], 9), x, generator)
        lo = _const([q[0] for q in self.ranges], x.device)
        hi = _const([q[1] for q in self.ranges], x.device)
        apply = r[:, 8] < self.p
        factors = torch.where(apply[:, None], lo + (hi - lo) * r[:, 0:3], 1.0)
        hue = (2.0 * r[:, 3] - 1.0) * self.hue
        order = r[:, 4:8].argsort(1)
        return factors, hue, order, apply

    def steps(self, factors: Tensor, order: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample blend weights (B, S) of each step: f on x, and the weights of grey and mean."""
        if self.hue == 0:
            ops = order  # the "hue" position is a no-op step
        else:
            hue_pos = order.argsort(1)[:, 3:4]
            k = torch.arange(3, device=order.device)
            pre = torch.where(hue_pos > k, order[:, :3], 3)
            post = torch.where(hue_pos < k + 1, order[:, 1:], 3)
            ops = torch.cat([pre, post], 1)
        f = torch.cat([factors, torch.ones_like(factors[:, :1])], 1).gather(1, ops)
        return f, (ops == 2) * (1.0 - f), (ops == 1) * (1.0 - f)

    @staticmethod
    def blend(x: Tensor, f: Tensor, w_gray: Tensor, w_mean: Tensor) -> Tensor:
        """clamp(x f + grey w_gray + mean_grey w_mean) with per-sample (B,) weights."""
        gray = _gray(x)
        mean = gray.mean((1, 2, 3), keepdim=True)
        out = torch.addcmul(x * _mask(f), gray, _mask(w_gray))
        return torch.addcmul(out, mean, _mask(w_mean)).clamp_(0.0, 1.0)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        factors, hue, order, apply = self.sample(x, generator)
        f, wg, wm = self.steps(factors, order)
        n = f.shape[1]
        for k in range(n // 2 if self.hue else n):
            x = self.blend(x, f[:, k], wg[:, k], wm[:, k])
        if self.hue:
            x = torch.where(_mask(apply), adjust_hue(x, hue), x)
            for k in range(n // 2, n):
                x = self.blend(x, f[:, k], wg[:, k], wm[:, k])
        return x


class Grayscale(GPUOp):
    """RandomGrayscale(p): the luma replicated to the 3 channels."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        m = _rand((x.shape[0],), x, generator) < self.p
        return torch.where(_mask(m), _gray(x).expand_as(x), x)


def gaussian_kernels(kernel_size: int, sigma: Tensor) -> Tensor:
    """Per-sample 1-d Gaussian kernels (B, k), same formula as torchvision's gaussian_blur."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    t = torch.linspace(-lim, lim, kernel_size, device=sigma.device, dtype=sigma.dtype)
    return torch.softmax(-(t[None, :] / sigma[:, None]).pow(2), dim=1)


def blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with a per-sample sigma (B,), reflect padding, as grouped convs."""
    b, c, h, w = x.shape
    k1 = gaussian_kernels(kernel_size, sigma).repeat_interleave(c, 0)  # (B*C, k)
    p = kernel_size // 2
    y = F.pad(x, (p, p, p, p), mode="reflect").reshape(1, b * c, h + 2 * p, w + 2 * p)
    y = F.conv2d(y, k1.view(b * c, 1, 1, kernel_size), groups=b * c)
    y = F.conv2d(y, k1.view(b * c, 1, kernel_size, 1), groups=b * c)
    return y.view(b, c, h, w)


class GaussianBlur(GPUOp):
    """RandomApply(GaussianBlur(kernel_size, sigma ~ U(sigma)), p) with per-sample sigma."""

    def __init__(self, kernel_size: int = 3, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        self.kernel_size = kernel_size
        self.sigma = sigma
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        r = _rand((2, x.shape[0]), x, generator)
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * r[0]
        return torch.where(_mask(r[1] < self.p), blur(x, sigma, self.kernel_size), x)


class Cutout(GPUOp):
    """Zero a size x size square at a uniform centre, clipped to the image (the authors' Cutout)."""

    def __init__(self, size: int = 16, p: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        b, _, h, w = x.shape
        r = _rand((b, 3), x, generator)
        centre = (r[:, :2] * _const((h, w), x.device)).floor()  # (B, 2): row, column
        d = torch.arange(max(h, w), device=x.device, dtype=x.dtype) - centre[:, :, None]
        half = self.size // 2
        inside = (d >= -half) & (d < half)  # rows / columns [c - half, c + half), as the authors
        hole = inside[:, 0, :h, None] & inside[:, 1, None, :w] & (r[:, 2] < self.p)[:, None, None]
        return x * (~hole).unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# AutoAugment, CIFAR10 policy
# ---------------------------------------------------------------------------------------------
OP_NAMES = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert",
)
SIGNED_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness")

# torchvision AutoAugmentPolicy.CIFAR10: 25 sub-policies of (op, probability, magnitude bin).
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int | None], ...], ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)


def magnitude(name: str, bin_: int | None, height: int, width: int) -> float:
    """torchvision's unsigned AutoAugment magnitude of `name` at bin `bin_` (10 bins)."""
    if bin_ is None:
        return 0.0
    space = {
        "ShearX": (0.0, 0.3), "ShearY": (0.0, 0.3), "Rotate": (0.0, 30.0),
        "TranslateX": (0.0, 150.0 / 331.0 * width), "TranslateY": (0.0, 150.0 / 331.0 * height),
        "Brightness": (0.0, 0.9), "Color": (0.0, 0.9), "Contrast": (0.0, 0.9), "Sharpness": (0.0, 0.9),
        "Solarize": (1.0, 0.0),
    }
    if name == "Posterize":
        return float(int((8 - (torch.arange(10) / ((10 - 1) / 4))).round().int()[bin_]))
    if name in space:
        return float(torch.linspace(*space[name], 10)[bin_])  # float32 values, as torchvision reads them
    return 0.0


def _inverse_affine_matrix(
    center: tuple[float, float], angle: float, translate: tuple[float, float], shear: tuple[float, float]
) -> list[float]:
    """torchvision's `_get_inverse_affine_matrix` (scale 1), same arithmetic in Python floats."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty)
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty)
    return m


def _op_matrix(name: str, mag: float, h: int, w: int) -> list[float]:
    """Inverse affine matrix torchvision builds for a geometric op (identity for the others)."""
    corner = (-0.5 * w, -0.5 * h)  # shears are about the top-left corner (center=[0, 0])
    if name == "ShearX":
        return _inverse_affine_matrix(corner, 0.0, (0.0, 0.0), (math.degrees(math.atan(mag)), 0.0))
    if name == "ShearY":
        return _inverse_affine_matrix(corner, 0.0, (0.0, 0.0), (0.0, math.degrees(math.atan(mag))))
    if name == "TranslateX":
        return _inverse_affine_matrix((0.0, 0.0), 0.0, (float(int(mag)), 0.0), (0.0, 0.0))
    if name == "TranslateY":
        return _inverse_affine_matrix((0.0, 0.0), 0.0, (0.0, float(int(mag))), (0.0, 0.0))
    if name == "Rotate":  # F.rotate passes -angle (mod 360) to the inverse matrix
        return _inverse_affine_matrix((0.0, 0.0), -(mag % 360), (0.0, 0.0), (0.0, 0.0))
    return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


N_COLS = 13  # rescaled theta^T (6) | f | alpha | w_gray | w_mean | is_sharpness | is_autocontrast | is_equalize


def op_row(name: str, mag: float, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Everything an op needs that does not depend on the image, for signed magnitude `mag`.

    Returns a float32 row (N_COLS,) and a float32 (256,) lookup table. The theta part is
    torchvision's `_affine_grid` theta, rescaled the same way in float32. The LUT is
    posterize / solarize / invert evaluated by torchvision itself on 0..255 (identity otherwise).
    The blend part gives `y f + degenerate alpha` with torchvision's factor 1 + mag.
    """
    from torchvision.transforms.v2 import functional as TF

    theta = torch.tensor(_op_matrix(name, mag, h, w), dtype=torch.float32).view(1, 2, 3)
    rescaled = theta.transpose(1, 2).div(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32))
    v = torch.arange(256, dtype=torch.uint8).view(1, 1, 256)
    if name == "Posterize":
        v = TF.posterize(v, int(mag))
    elif name == "Solarize":
        v = TF.solarize(v, 255.0 * mag)
    elif name == "Invert":
        v = TF.invert(v)
    blend = name in ("Brightness", "Color", "Contrast", "Sharpness")
    ratio = 1.0 + mag if blend else 1.0
    tail = [
        ratio, 1.0 - ratio, float(name == "Color"), float(name == "Contrast"),
        float(name == "Sharpness"), float(name == "AutoContrast"), float(name == "Equalize"),
    ]
    row = torch.cat([rescaled.reshape(6), torch.tensor(tail, dtype=torch.float32)])
    return row, v.view(256).float()


class AutoAugmentCIFAR10(GPUOp):
    """torchvision AutoAugment(AutoAugmentPolicy.CIFAR10), each sample drawing its own sub-policy.

    All image-independent work is precomputed: every (sub-policy, slot, sign) is a row of a
    table (affine theta, blend weights, op flags) and a 256-entry LUT; a batch gathers one row per
    sample and slot (a not-applied op gets the identity row). Each slot then runs three batched
    stages that are exact no-ops for samples whose op is elsewhere: one nearest `grid_sample`
    (shear, translate, rotate, fill 0), one gather through per-channel LUTs (posterize,
    solarize, invert, autocontrast, equalize) and one blend (brightness, color, contrast,
    sharpness). Values are kept as 0..255 integers in float and rounded or truncated where
    torchvision's uint8 kernels do, so each op matches `torchvision.transforms.v2.functional`
    on uint8 images (exactly on CPU in the tests).
    """

    def __init__(self, policy: Sequence[Sequence[tuple[str, float, int | None]]] = CIFAR10_POLICY) -> None:
        super().__init__()
        self.policy = tuple(tuple(p) for p in policy)
        self._tables: dict[tuple[torch.device, int, int], tuple[Tensor, Tensor, Tensor]] = {}

    @property
    def identity_entry(self) -> int:
        return 4 * len(self.policy)

    def entry_names(self) -> list[str]:
        """Op name of each table entry (index (policy * 2 + slot) * 2 + negative; last = identity)."""
        return [sp[s][0] for sp in self.policy for s in range(2) for _ in range(2)] + ["Identity"]

    def tables(self, device: torch.device, h: int, w: int) -> tuple[Tensor, Tensor, Tensor]:
        """(rows (E, N_COLS), luts (E, 256), probs (P, 2)) on `device`, built once per device and size."""
        key = (device, h, w)
        if key not in self._tables:
            rows, luts = [], []
            for sp in self.policy:
                for name, _, bin_ in sp:
                    mag = magnitude(name, bin_, h, w)
                    for sign in (1.0, -1.0):
                        row, lut = op_row(name, sign * mag if name in SIGNED_OPS else mag, h, w)
                        rows.append(row)
                        luts.append(lut)
            row, lut = op_row("Identity", 0.0, h, w)
            probs = torch.tensor([[p for _, p, _ in sp] for sp in self.policy], dtype=torch.float32)
            self._tables[key] = (
                torch.stack(rows + [row]).to(device),
                torch.stack(luts + [lut]).to(device),
                probs.to(device),
            )
        return self._tables[key]

    def sample(self, x: Tensor, generator: Generator = None) -> Tensor:
        """Per-sample table entries (B, 2): sub-policy, apply (prob), sign (1/2), as torchvision draws."""
        b, _, h, w = x.shape
        _, _, probs = self.tables(x.device, h, w)
        n = len(self.policy)
        r = _rand((b, 5), x, generator)
        pol = (r[:, 0] * n).long().clamp_(max=n - 1)
        apply = r[:, 1:3] <= probs[pol]
        entry = (4 * pol)[:, None] + 2 * torch.arange(2, device=x.device) + (r[:, 3:5] <= 0.5).long()
        return torch.where(apply, entry, self.identity_entry)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        rows_t, luts_t, _ = self.tables(x.device, x.shape[2], x.shape[3])
        entry = self.sample(x, generator)
        rows, luts = rows_t[entry], luts_t[entry]  # (B, 2, N_COLS), (B, 2, 256)
        y = (x * 255.0).round()
        for slot in range(entry.shape[1]):
            y = apply_slot(y, rows[:, slot], luts[:, slot])
        return y / 255.0


def apply_op(y: Tensor, name: str, mag: float) -> Tensor:
    """One AutoAugment op with signed magnitude `mag` on the whole batch y (B, C, H, W) in 0..255."""
    row, lut = op_row(name, mag, y.shape[2], y.shape[3])
    b = y.shape[0]
    return apply_slot(y, row.to(y.device).expand(b, -1), lut.to(y.device).expand(b, -1))


_BASE_GRIDS: dict[tuple[int, int, torch.device, torch.dtype], Tensor] = {}


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """torchvision `_affine_grid` base: pixel-centred (x, y, 1), shape (1, H*W, 3)."""
    key = (h, w, device, dtype)
    if key not in _BASE_GRIDS:
        xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=device, dtype=dtype)
        ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=device, dtype=dtype)
        ones = torch.ones(h, w, device=device, dtype=dtype)
        grid = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), ones], -1)
        _BASE_GRIDS[key] = grid.view(1, h * w, 3)
    return _BASE_GRIDS[key]


_SHARPEN: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}


def _sharpness_kernel(c: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    key = (c, device, dtype)
    if key not in _SHARPEN:
        k = torch.full((3, 3), 1.0 / 13.0, dtype=dtype)
        k[1, 1] = 5.0 / 13.0
        _SHARPEN[key] = k.expand(c, 1, 3, 3).contiguous().to(device)
    return _SHARPEN[key]


def apply_slot(y: Tensor, row: Tensor, lut: Tensor) -> Tensor:
    """Apply per-sample ops given by table rows (B, N_COLS) and LUTs (B, 256) to y (B, C, H, W) in 0..255."""
    b, c, h, w = y.shape
    is_sharp, is_auto, is_equal = (row[:, 10:13] > 0.5).unbind(1)
    # 1. geometric: one nearest grid_sample, fill 0 (identity theta for non-geometric ops)
    grid = torch.matmul(_base_grid(h, w, y.device, y.dtype), row[:, :6].view(b, 3, 2)).view(b, h, w, 2)
    y = F.grid_sample(y, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # 2. LUT ops
    flat = y.reshape(b, c, h * w)
    idx = flat.long()
    v = torch.arange(256, device=y.device, dtype=y.dtype)
    lo, hi = torch.aminmax(flat, dim=2, keepdim=True)
    flat_range = hi == lo  # torchvision leaves constant channels unchanged
    inv_scale = torch.where(flat_range, 1.0, (hi - lo) * (1.0 / 255.0))
    auto = ((v - torch.where(flat_range, 0.0, lo)) / inv_scale).clamp_(0.0, 255.0).floor_()
    equal = _equalize_lut(idx.view(b * c, h * w)).view(b, c, 256)
    table = torch.where(is_auto.view(b, 1, 1), auto, lut.view(b, 1, 256))
    table = torch.where(is_equal.view(b, 1, 1), equal, table)
    y = table.gather(2, idx).view(b, c, h, w)
    # 3. blends: y f + degenerate alpha, with alpha = 1 - f stored as torchvision computes it
    f, alpha, w_gray, w_mean = (row[:, k].view(b, 1, 1, 1) for k in range(6, 10))
    gray = _gray(y).floor_()  # torchvision floors the luma of uint8 images
    mean = gray.mean((1, 2, 3), keepdim=True)
    degenerate = torch.addcmul(gray * w_gray, mean, w_mean)
    blended = torch.addcmul(y * f, degenerate, alpha)  # fused like torchvision's add_(alpha=...)
    # sharpness: degenerate = rounded 3x3 smoothing inside, the image itself on the border
    smooth = F.conv2d(y, _sharpness_kernel(c, y.device, y.dtype), groups=c).round_()
    sharp = F.pad(smooth - y[:, :, 1:-1, 1:-1], (1, 1, 1, 1))
    sharpened = torch.addcmul(y, sharp, alpha)
    return torch.where(is_sharp.view(b, 1, 1, 1), sharpened, blended).clamp_(0.0, 255.0).floor_()


def _equalize_lut(flat: Tensor) -> Tensor:
    """torchvision/PIL equalize LUT from integer pixels (N, P) long -> (N, 256) float."""
    n, p = flat.shape
    hist = torch.zeros(n, 256, dtype=torch.int64, device=flat.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    cum = hist.cumsum(1)
    last = cum.argmax(1, keepdim=True)  # first bin reaching the total = last non-empty bin
    step = torch.div(p - hist.gather(1, last), 255, rounding_mode="floor")
    tail = torch.div(cum[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(tail[:, :1]), tail], 1)
    ident = torch.arange(256, device=flat.device)
    return torch.where(step != 0, lut, ident).float()  # step 0 (nearly constant): unchanged


class GPUCompose(nn.Module):
    """Chain GPU ops; accepts uint8/float NHWC/NCHW (see `to_float_nchw`), returns float32 NCHW."""

    def __init__(self, ops: Sequence[GPUOp]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        x = to_float_nchw(x)
        for op in self.ops:
            x = op(x, generator)
        return x


GPU_TRANSFORM_NAMES = ("cifar_regular", "cifar_sim", "cifar_aug", "cifar_test")


def build_gpu_transform(
    name: str,
    *,
    image_size: int = 32,
    mean: Sequence[float] = CIFAR_MEAN,
    std: Sequence[float] = CIFAR_STD,
    blur_kernel: int = 13,  # as transforms.CIFAR_BLUR_KERNEL: +-3 sigma at sigma 2
) -> GPUCompose:
    """GPU twin of `gpaco.data.transforms.build_transform` for the CIFAR-type names."""
    ops: list[GPUOp]
    if name == "cifar_regular":
        ops = [RandomCropPad(image_size, padding=4), HFlip(0.5), AutoAugmentCIFAR10(), Cutout(image_size // 2)]
    elif name in ("cifar_sim", "cifar_aug"):
        ops = [
            RandomResizedCrop(image_size, scale=(0.2, 1.0)),
            HFlip(0.5),
            ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            Grayscale(0.2),
            GaussianBlur(blur_kernel, (0.1, 2.0), p=0.5 if name == "cifar_sim" else 0.2),
        ]
    elif name == "cifar_test":
        ops = []
    else:
        raise UserError(f"unknown GPU transform {name!r}; choose one of {', '.join(GPU_TRANSFORM_NAMES)}")
    return GPUCompose(ops + [Normalize(mean, std)])
