"""Batched augmentations with per-sample random parameters, on CPU or CUDA tensors.

Every op maps a float (B, C, H, W) batch in [0, 1] to another one and is called as
`op(x, generator=None)`. All random numbers come from `torch.rand(..., generator=g,
device=x.device)`, so a seeded generator on the batch's device makes the output reproducible.

Design rules (the aim is a whole CIFAR training step in a few ms on one GPU):
- no Python loop over the samples of a batch: every op runs on the whole batch, and a sample
  that should not be changed gets a no-op parameter or is restored with `torch.where`;
- no host synchronisation: no `.item()`, `.cpu()`, boolean indexing or data-dependent shapes;
  constant tables are moved to the device once and cached.

`build_batched_transform(name)` gives the GPU twins of the CPU pipelines in `gpaco.data.transforms`.
Colour ops expect 3 channels (the datasets store grey images as RGB).

Eager mode is launch-bound: on one H200 (torch 2.11) one CIFAR view of batch 128 takes ~3 ms
(~170 small kernels), the two views of a PaCo step ~6.3 ms. The pipelines capture in a CUDA
graph (fixed shapes, `graph.register_generator_state(g)` for a custom generator; new random
numbers on every replay): the same two views then take ~0.76 ms. (Measured before AutoAugment
became the authors' policy, whose resampling adds a small float64 cubic per slot: not re-measured.)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align


Generator = torch.Generator | None



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


class BatchedOp(nn.Module):
    """Base class: `op(x, generator)` with x float (B, C, H, W).

    `capturable`: run with fixed shapes and no host synchronisation, as a CUDA graph capturing
    the op needs; an op whose fastest form is capturable anyway ignores it."""

    capturable: bool = False

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class ResizeIfNeeded(BatchedOp):
    """Bilinear, antialiased resize to `size` x `size` unless the batch already is, rounded to
    the 256 levels a uint8 image has: the twin of `gpaco.data.transforms.ResizeIfNeeded`, which
    CIFAR-type views apply first (a 28 px Fashion-MNIST image trained at 32 px)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = int(size)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        if tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        y = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                          align_corners=False)
        return y.mul_(255).round_().clamp_(0, 255).div_(255)


class Normalize(BatchedOp):
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


class RandomCropPad(BatchedOp):
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


class HFlip(BatchedOp):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        flip = _rand((x.shape[0],), x, generator) < self.p
        return torch.where(_mask(flip), x.flip(-1), x)


class RandomResizedCrop(BatchedOp):
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


class ColorJitter(BatchedOp):
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
        """clamp(x f + grey w_gray + mean_grey w_mean) with per-sample (B,) weights.

        Products then sums, as torchvision's _blend rounds them; not addcmul, whose broadcast
        grey / mean operands ran ~2x slower on the CPU (224 px: 1.1 ms a call for 7 images)."""
        gray = _gray(x)
        mean = gray.mean((1, 2, 3), keepdim=True)
        out = (x * _mask(f)).add_(gray * _mask(w_gray)).add_(mean * _mask(w_mean))
        return out.clamp_(0.0, 1.0)

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


class Grayscale(BatchedOp):
    """RandomGrayscale(p): the luma replicated to the 3 channels."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        m = _rand((x.shape[0],), x, generator) < self.p
        return torch.where(_mask(m), _gray(x).expand_as(x), x)


def pil_blur_radius(sigma: Tensor, passes: int = 3) -> Tensor:
    """The fractional box radius of each of PIL's `passes` box passes for a Gaussian `sigma`
    (Pillow's _gaussian_blur_radius, after Gwosdek et al. 2011), in its float32 variables."""
    f32 = torch.float32
    sigma2 = (sigma.float() * sigma.float() / passes).double()
    big_l = torch.sqrt(12.0 * sigma2 + 1.0).to(f32).double()
    small_l = torch.floor((big_l - 1.0) / 2.0).to(f32).double()
    a = ((2 * small_l + 1) * (small_l * (small_l + 1) - 3 * sigma2)).to(f32).double()
    a = (a / (6 * (sigma2 - (small_l + 1) ** 2))).to(f32)
    return small_l.to(f32) + a


def box_weights(radius: Tensor, taps: int) -> Tensor:
    """Per-sample weights (B, taps) of one PIL box pass of float32 fractional `radius` (B,):
    1/(2r+1) over the 2 int(r) + 1 central taps and the fraction's share on the two taps beyond,
    in Pillow's 24-bit fixed point (its float32 division included). `taps` (odd) >= 2 int(r) + 3."""
    whole = radius.floor().double()
    ww = torch.floor(torch.full_like(radius, 2.0**24) / (radius * 2 + 1)).double()
    fw = torch.floor((2.0**24 - (whole * 2 + 1) * ww) / 2)
    k = (torch.arange(taps, device=radius.device, dtype=torch.float64) - taps // 2).abs()[None]
    w = torch.where(k <= whole[:, None], ww[:, None], torch.where(k == whole[:, None] + 1, fw[:, None], 0.0))
    return w / 2.0**24


def _box_pass(y: Tensor, w: Tensor, dim: int) -> Tensor:
    """One box pass along `dim` (3: rows, 2: columns) with edge pixels repeated, rounded as
    PIL's 8-bit result: per-sample weights w (B, taps) over y (B, C, H, W) of 0..255 values."""
    p = w.shape[1] // 2
    yp = F.pad(y, (p, p, 0, 0) if dim == 3 else (0, 0, p, p), mode="replicate")
    size = y.shape[dim]
    out = yp.narrow(dim, 0, size) * _mask(w[:, 0])
    for k in range(1, w.shape[1]):
        out.addcmul_(yp.narrow(dim, k, size), _mask(w[:, k]))
    return out.add_(0.5).floor_()


def box_taps(sigma_max: float, passes: int = 3) -> int:
    """Taps of a box pass that holds every sigma up to `sigma_max` (5 up to sigma 2)."""
    return 2 * int(pil_blur_radius(torch.tensor([float(sigma_max)]), passes)) + 3


def pil_blur(x: Tensor, sigma: Tensor, taps: int = 5, passes: int = 3) -> Tensor:
    """PIL's `ImageFilter.GaussianBlur(radius=sigma)` (`passes` box passes along rows, then along
    columns, each rounded to 8 bits) with a per-sample sigma (B,) on x in [0, 1]; `taps` from
    `box_taps` of the largest sigma (no host work here: a CUDA graph captures it). On integer
    images (x * 255) it gives PIL's pixels up to float32 rounding of ties."""
    w = box_weights(pil_blur_radius(sigma, passes), taps).to(x.dtype)
    y = x * 255.0
    for dim in (3, 2):
        for _ in range(passes):
            y = _box_pass(y, w, dim)
    return y.div_(255.0)


class GaussianBlur(BatchedOp):
    """RandomApply(PIL GaussianBlur(radius=sigma ~ U(sigma)), p) with per-sample sigma: the
    authors' (MoCo's) blur, and the per-sample path's `transforms.PILGaussianBlur`."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5) -> None:
        super().__init__()
        self.sigma = sigma
        self.p = p
        self.taps = box_taps(sigma[1])

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        r = _rand((2, x.shape[0]), x, generator)
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * r[0]
        chosen = r[1] < self.p
        if self.capturable or x.is_cuda:  # fixed shapes, no host synchronisation
            return torch.where(_mask(chosen), pil_blur(x, sigma, self.taps), x)
        # on the CPU only the samples that blur (half at p 0.5): each sample's pixels are its own
        rows = chosen.nonzero().squeeze(1)
        if len(rows) == 0:
            return x
        return x.index_copy(0, rows, pil_blur(x[rows], sigma[rows], self.taps))


class Cutout(BatchedOp):
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


def make_capturable(ops: Iterable[Callable]) -> None:
    """Set `capturable` on every batched op inside `ops` (a CUDA graph is about to capture them)."""
    for op in ops:
        if isinstance(op, nn.Module):
            for module in op.modules():
                if isinstance(module, BatchedOp):
                    module.capturable = True
