"""timm's RandAugment `rand-n{N}-m{M}-mstd0.5` (the ImageNet recipes' `randcls` /
`randclsstack`, `transforms._rand_augment`) on whole batches, each sample drawing its own ops.

Per sample and layer, as timm's `RandAugment` / `AugmentOp`: one of its 15 default ops uniformly
(with replacement), applied with probability 0.5, magnitude ~ N(M, 0.5) clipped to [0, 10], a
random sign for rotate / shear / translate, and bilinear or bicubic resampling with equal odds
for those. Each op then works in PIL's arithmetic on integer pixels: the affine ops sample
Pillow's bilinear / bicubic (a = -1) filters at its pixel-centre coordinates with the ImageNet
mean pixel as fill; the pixel ops are per-sample 256-entry LUTs (posterize, solarize, solarize-add,
invert, autocontrast, equalize) or ImageEnhance blends (color, contrast, brightness, sharpness),
shared with the batched CIFAR AutoAugment. Posterize to 0 bits is black (`gpaco.data.randaugment`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gpaco.data.batched_autoaugment import COLUMN, FLAGS, apply_luts, blend
from gpaco.data.batched_ops import BatchedOp, Generator, _const, _rand

# timm's _RAND_TRANSFORMS, in its order (the op index a sample draws)
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
       "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
       "TranslateYRel")
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
LUTS = ("AutoContrast", "Equalize", "Invert", "Posterize", "Solarize", "SolarizeAdd")
BLENDS = ("Color", "Contrast", "Brightness", "Sharpness")
_INDEX = {name: k for k, name in enumerate(OPS)}


def _is(op: Tensor, names: Sequence[str]) -> Tensor:
    out = torch.zeros_like(op, dtype=torch.bool)
    for name in names:
        out |= op == _INDEX[name]
    return out


def affine_matrices(op: Tensor, level: Tensor, h: int, w: int) -> Tensor:
    """Per-sample PIL AFFINE data (B, 6) float64 (output -> input map) of the geometric ops at
    signed level (B,) (magnitude / 10, sign applied); identity rows for the other ops."""
    level = level.double()
    one, zero = torch.ones_like(level), torch.zeros_like(level)
    shear = level * 0.3
    pixels = level * 0.45
    # Image.rotate(deg): matrix of -deg radians about the centre, cos / sin rounded to 15 places
    angle = -torch.deg2rad(torch.remainder(level * 30.0, 360.0))
    cos = torch.round(torch.cos(angle), decimals=15)
    sin = torch.round(torch.sin(angle), decimals=15)
    cx, cy = w / 2.0, h / 2.0
    rows = {
        "Rotate": (cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy),
        "ShearX": (one, shear, zero, zero, one, zero),
        "ShearY": (one, zero, zero, shear, one, zero),
        "TranslateXRel": (one, zero, pixels * w, zero, one, zero),
        "TranslateYRel": (one, zero, zero, zero, one, pixels * h),
    }
    out = torch.stack((one, zero, zero, zero, one, zero), 1)
    for name, row in rows.items():
        out = torch.where((op == _INDEX[name])[:, None], torch.stack(row, 1), out)
    return out


def _cubic(v0: Tensor, v1: Tensor, v2: Tensor, v3: Tensor, d: Tensor) -> Tensor:
    """Pillow's BICUBIC macro (cubic convolution, a = -1) in float64."""
    p2 = -v0 + v2
    p3 = 2 * (v0 - v1) + v2 - v3
    p4 = -v0 + v1 - v2 + v3
    return v1 + d * (p2 + d * (p3 + d * p4))


# Output pixels per block of the CPU affine: a block's float64 taps and filter terms then stay
# in cache instead of streaming through memory, and a block is still large enough that the
# ~60 ops it takes cost little each. At 224 px on one core 4,096 was within noise of the best
# for every filter, axes and group size measured (1,024 to 8,192 tried; 50,176, one block an
# image, was 2-3x slower).
AFFINE_BLOCK = 4096


def affine(y: Tensor, matrix: Tensor, bicubic: Tensor, fill: Tensor,
           capturable: bool = True) -> Tensor:
    """Pillow's `Image.transform(AFFINE, matrix, BILINEAR | BICUBIC, fillcolor=fill)` per sample
    on y (B, C, H, W) of integers 0..255: the input position of each output pixel's centre,
    `fill` (C,) where it falls outside the image, else the filter over edge-clamped taps,
    clipped and truncated to 8 bits. `bicubic` (B,) bool picks the filter.

    `capturable` (a GPU, a CUDA graph): every sample through both filters at once, fixed
    shapes. Otherwise (the CPU) each group of `_cpu_groups` through its own filter along the
    axes it moves, in blocks of `AFFINE_BLOCK` output pixels: the same arithmetic on the same
    values, 3-10x faster."""
    b, c, h, w = y.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=y.device, dtype=torch.float64) + 0.5,
                            torch.arange(w, device=y.device, dtype=torch.float64) + 0.5,
                            indexing="ij")
    centres = (gx.reshape(1, -1), gy.reshape(1, -1))
    flat = y.reshape(b, c, h * w).double()
    fill = fill.view(1, c, 1).double()
    if capturable:
        out = _transform(flat, matrix, centres, (h, w), fill, bicubic)
        return out.to(y.dtype).view(b, c, h, w)
    out = torch.empty(b, c, h * w, dtype=y.dtype, device=y.device)
    for rows, cubic, axes in _cpu_groups(matrix, bicubic):
        source, m = flat[rows], matrix[rows]
        for start in range(0, h * w, AFFINE_BLOCK):
            block = tuple(g[:, start:start + AFFINE_BLOCK] for g in centres)
            out[rows, :, start:start + block[0].shape[1]] = _transform(
                source, m, block, (h, w), fill, cubic, axes).to(y.dtype)
    return out.view(b, c, h, w)


def _cpu_groups(matrix: Tensor, bicubic: Tensor) -> list[tuple[Tensor, bool, tuple[bool, bool]]]:
    """The samples of each (filter, axes) group: (rows, bicubic, (along x, along y)).

    An axis along which every output pixel lands on input pixel centres (the fraction dy or dx
    is exactly 0: shears and translations move along one axis; only rotations along both)
    needs one tap there: the filter's other taps have weight exactly 0 (v1 + 0 * p, lerp by 0),
    so skipping them leaves every value as it was."""
    def integral(v: Tensor) -> Tensor:
        return v == v.round()

    still_y = (matrix[:, 3] == 0) & (matrix[:, 4] == 1) & integral(matrix[:, 5])  # yin = gy + k
    still_x = (matrix[:, 0] == 1) & (matrix[:, 1] == 0) & integral(matrix[:, 2])  # xin = gx + k
    groups = []
    for cubic, chosen in ((True, bicubic), (False, ~bicubic)):
        for axes, kind in (((True, False), still_y), ((False, True), still_x & ~still_y),
                           ((True, True), ~still_x & ~still_y)):
            rows = (chosen & kind).nonzero().squeeze(1)
            if len(rows):
                groups.append((rows, cubic, axes))
    return groups


def _transform(flat: Tensor, matrix: Tensor, centres: tuple[Tensor, Tensor],
               size: tuple[int, int], fill: Tensor, bicubic: Tensor | bool,
               axes: tuple[bool, bool] = (True, True)) -> Tensor:
    """`affine` of the output pixels at `centres` ((1, N) x and y) from float64 images `flat`
    (B, C, H * W): (B, C, N) float64. `bicubic`: a bool for one filter, or (B,) to pick per
    sample between both; `axes`: interpolate along (x, y), else read the one tap there."""
    (h, w), (gx, gy), a = size, centres, matrix[:, :, None]
    xin = a[:, 0] * gx + a[:, 1] * gy + a[:, 2]
    yin = a[:, 3] * gx + a[:, 4] * gy + a[:, 5]
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    xs, ys = xin - 0.5, yin - 0.5
    x0, y0 = xs.floor(), ys.floor()
    dx, dy = (xs - x0)[:, None], (ys - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    b, c, n = flat.shape[0], flat.shape[1], xin.shape[1]
    offsets = (0, 1) if bicubic is False else (-1, 0, 1, 2)
    rows = {r: (y0 + r).clamp_(0, h - 1).mul_(w) for r in (offsets if axes[1] else (0,))}
    cols = {k: (x0 + k).clamp_(0, w - 1) for k in (offsets if axes[0] else (0,))}

    def tap(r: int, k: int) -> Tensor:  # edge-clamped
        return flat.gather(2, (rows[r] + cols[k])[:, None].expand(b, c, n))

    def interpolate(taps: list[Tensor], d: Tensor, cubic: bool) -> Tensor:
        if len(taps) == 1:
            return taps[0]
        return _cubic(*taps, d) if cubic else torch.lerp(*taps, d)

    def filtered(cubic: bool) -> Tensor:
        own = (-1, 0, 1, 2) if cubic else (0, 1)
        along_x, along_y = (own if axes[0] else (0,)), (own if axes[1] else (0,))
        return interpolate([interpolate([tap(r, k) for k in along_x], dx, cubic)
                            for r in along_y], dy, cubic)

    if isinstance(bicubic, Tensor):
        out = torch.where(bicubic.view(b, 1, 1), filtered(True), filtered(False))
    else:
        out = filtered(bicubic)
    return torch.where(inside[:, None], out.clamp_(0.0, 255.0).floor_(), fill)


def luts(op: Tensor, level: Tensor) -> Tensor:
    """Per-sample 256-entry LUTs (B, 256) of the fixed-LUT ops at unsigned level (B,) in [0, 1];
    the identity for every other op (autocontrast and equalize build theirs from the image)."""
    v = torch.arange(256, device=op.device, dtype=torch.float32)[None]
    lvl = level[:, None]
    bits = torch.floor(lvl * 4.0)  # int(m / 10 * 4)
    step = torch.pow(2.0, 8.0 - bits.clamp(0, 8))
    posterize = torch.where(bits <= 0, torch.zeros_like(v), torch.floor(v / step) * step)
    thresh = torch.floor(lvl * 256.0).clamp(max=256.0)
    add = torch.floor(lvl * 110.0).clamp(max=128.0)
    table = {
        "Invert": 255.0 - v,
        "Posterize": torch.where(bits >= 8, v, posterize),
        "Solarize": torch.where(v >= thresh, 255.0 - v, v),
        "SolarizeAdd": torch.where(v < 128, (v + add).clamp(max=255.0), v),
    }
    out = v.expand(op.shape[0], 256)
    for name, lut in table.items():
        out = torch.where((op == _INDEX[name])[:, None], lut, out)
    return out


def blend_rows(op: Tensor, level: Tensor) -> Tensor:
    """Per-sample ImageEnhance rows (B, 6) of `batched_autoaugment.blend`: factor m/10*1.8+0.1
    and the op's flag (brightness has none: black degenerate); factor 1 for other ops."""
    factor = torch.where(_is(op, BLENDS), level * 1.8 + 0.1, torch.ones_like(level))
    flags = [(op == _INDEX[name]).float() if name in BLENDS else torch.zeros_like(level)
             for name in FLAGS]
    return torch.stack([factor, *flags], 1).float()


class RandAugment(BatchedOp):
    """timm `rand-n{n}-m{m}-mstd{std}` with probability 0.5 per op, on float batches in [0, 1]
    (rounded to the integers 0..255 first, as PIL images are). `fill`: the affine ops' fill
    pixel (timm's `img_mean`)."""

    def __init__(self, n: int = 2, m: float = 10.0, std: float = 0.5, p: float = 0.5,
                 fill: Sequence[int] = (124, 116, 104)) -> None:
        super().__init__()
        self.n, self.m, self.std, self.p = int(n), float(m), float(std), float(p)
        self.fill = tuple(int(v) for v in fill)

    def sample(self, x: Tensor, generator: Generator = None) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample, per-layer (B, n): op index (-1: not applied), signed level (magnitude / 10),
        bicubic flag."""
        b = x.shape[0]
        r = _rand((6, b, self.n), x, generator)
        op = (r[0] * len(OPS)).long().clamp_(max=len(OPS) - 1)
        op = torch.where(r[1] <= self.p, op, -1)
        # Box-Muller from two uniforms: N(m, std), clipped to [0, 10] as timm's default bound
        normal = torch.sqrt(-2.0 * torch.log1p(-r[2])) * torch.cos(2.0 * math.pi * r[3])
        magnitude = (self.m + self.std * normal).clamp(0.0, 10.0)
        signed = _is(op, GEOMETRIC) & (r[4] > 0.5)
        level = torch.where(signed, -magnitude, magnitude) / 10.0
        bicubic = r[5] < 0.5
        return op, level, bicubic

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        op, level, bicubic = self.sample(x, generator)
        y = (x * 255.0).round_()
        for k in range(self.n):
            y = self.layer(y, op[:, k], level[:, k], bicubic[:, k])
        return y / 255.0

    def layer(self, y: Tensor, op: Tensor, level: Tensor, bicubic: Tensor) -> Tensor:
        """One layer: each sample through its op's stage only on the CPU (a third of the work),
        every sample through all three stages (exact no-ops elsewhere) on a GPU or captured."""
        stages = ((GEOMETRIC, self._affine), (LUTS, self._lut), (BLENDS, self._blend))
        y = y.contiguous()
        if self.capturable or y.is_cuda:
            for _, run in stages:
                y = run(y, op, level, bicubic)
            return y
        out = y.clone()
        for names, run in stages:
            rows = _is(op, names).nonzero().squeeze(1)
            if len(rows):
                out[rows] = run(y[rows], op[rows], level[rows], bicubic[rows])
        return out

    def _affine(self, y: Tensor, op: Tensor, level: Tensor, bicubic: Tensor) -> Tensor:
        fill = _const(self.fill[: y.shape[1]], y.device, y.dtype)
        matrix = affine_matrices(op, level, y.shape[2], y.shape[3])
        moved = affine(y, matrix, bicubic, fill, capturable=self.capturable or y.is_cuda)
        return torch.where(_is(op, GEOMETRIC).view(-1, 1, 1, 1), moved, y)

    def _lut(self, y: Tensor, op: Tensor, level: Tensor, bicubic: Tensor) -> Tensor:
        return apply_luts(y, luts(op, level), op == _INDEX["AutoContrast"],
                          op == _INDEX["Equalize"], capturable=self.capturable or y.is_cuda)

    def _blend(self, y: Tensor, op: Tensor, level: Tensor, bicubic: Tensor) -> Tensor:
        return blend(y, blend_rows(op, level), capturable=self.capturable or y.is_cuda)
