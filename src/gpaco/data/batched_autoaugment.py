"""The authors' CIFAR AutoAugment (`gpaco.data.cifar_autoaugment`) on whole batches, one random
sub-policy per sample, pixel for pixel the PIL transform's result.

Everything that does not depend on the image is precomputed per (sub-policy, slot, sign) entry:
where each output pixel reads the input, a 256-entry LUT, a blend factor and op flags. A batch
gathers one entry per sample and slot (an op not applied gets the identity entry), so a batch with
a different op per sample runs as a few batched kernels with no host synchronisation.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from gpaco.data.batched_ops import BatchedOp, Generator, _rand
from gpaco.data.cifar_autoaugment import (AFFINE_MATRICES, CIFAR10_POLICY, FILL, RESAMPLE,
                                          SIGNED_OPS, SubPolicy, geometric_op, magnitude)

BLENDS = ("Brightness", "Color", "Contrast", "Sharpness")  # PIL ImageEnhance: blend with a degenerate
FLAGS = ("Color", "Contrast", "Sharpness", "AutoContrast", "Equalize")  # row = factor | one flag each
FIXED_LUT_OPS = {  # ops that are one LUT whatever the image: PIL's own, read off a 0..255 ramp
    "Posterize": lambda img, m: ImageOps.posterize(img, int(m)),
    "Solarize": ImageOps.solarize,
    "Invert": lambda img, m: ImageOps.invert(img),
}


class Entries(NamedTuple):
    """Per-entry tables (E entries; N = H * W output pixels).

    taps (E, N, 16) long: the 4 x 4 input pixels (row-major, clamped to the image) around each
    output pixel's sampling position; frac (E, N, 2) float64: the position's (dx, dy) from the
    second tap; inside (E, N) bool: False where PIL fills; luts (E, 256); rows (E, 6): blend
    factor, then one flag per FLAGS.
    """

    taps: Tensor
    frac: Tensor
    inside: Tensor
    luts: Tensor
    rows: Tensor

    def select(self, entry: Tensor) -> Entries:
        return Entries(*(t[entry] for t in self))


def _taps(row: np.ndarray, col: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, 16) flat indices of rows row-1..row+2 x columns col-1..col+2, clamped to the image."""
    k = np.arange(-1, 3)
    r = np.clip(row[:, None] + k, 0, h - 1)
    c = np.clip(col[:, None] + k, 0, w - 1)
    return (r[:, :, None] * w + c[:, None, :]).reshape(-1, 16)


def _nearest_plan(name: str, m: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which input pixel PIL's nearest op copies to each output pixel, asked of PIL itself: the op
    on an image whose pixels hold their own index (fill -1 marks the uncovered pixels)."""
    index = Image.fromarray(np.arange(h * w, dtype=np.int32).reshape(h, w))  # mode "I"
    src = np.asarray(geometric_op(index, name, m, fill=-1)).reshape(-1).astype(np.int64)
    inside = src >= 0
    row, col = np.divmod(np.where(inside, src, 0), w)
    return _taps(row, col, h, w), np.zeros((h * w, 2)), inside


def _bicubic_plan(name: str, m: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PIL's bicubic affine sampling (Geometry.c), in the same float64 operations: position
    a0 (x + .5) + a1 (y + .5) + a2, filled where outside the image, else taps from floor(pos - .5) - 1."""
    a0, a1, a2, a3, a4, a5 = (float(v) for v in AFFINE_MATRICES[name](m, w, h))
    y, x = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    xin = (a0 * x + a1 * y + a2).reshape(-1)
    yin = (a3 * x + a4 * y + a5).reshape(-1)
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    xs, ys = xin - 0.5, yin - 0.5
    col, row = np.floor(xs), np.floor(ys)
    frac = np.stack([xs - col, ys - row], 1)
    return _taps(row.astype(np.int64), col.astype(np.int64), h, w), frac, inside


def _plan(name: str, m: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name not in RESAMPLE:
        ident = np.arange(h * w)
        return _taps(ident // w, ident % w, h, w), np.zeros((h * w, 2)), np.ones(h * w, dtype=bool)
    if RESAMPLE[name] == Image.NEAREST:
        return _nearest_plan(name, m, h, w)
    if RESAMPLE[name] == Image.BICUBIC and name in AFFINE_MATRICES:
        return _bicubic_plan(name, m, h, w)
    raise ValueError(f"no batched resampling for {name} with PIL filter {RESAMPLE[name]}")


def _lut(name: str, m: float) -> np.ndarray:
    ramp = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(1, 256))
    if name in FIXED_LUT_OPS:
        ramp = FIXED_LUT_OPS[name](ramp, m)
    return np.asarray(ramp).reshape(256)


def _row(name: str, m: float) -> list[float]:
    factor = 1.0 + m if name in BLENDS else 1.0  # ImageEnhance's factor; 1 blends to the image itself
    return [factor] + [float(name == flag) for flag in FLAGS]


def build_entries(ops: Sequence[tuple[str, float]], h: int, w: int) -> Entries:
    """Tables of the ops (name, signed magnitude), one entry each, on the CPU."""
    plans = [_plan(name, m, h, w) for name, m in ops]
    return Entries(
        taps=torch.from_numpy(np.stack([p[0] for p in plans])),
        frac=torch.from_numpy(np.stack([p[1] for p in plans])).double(),
        inside=torch.from_numpy(np.stack([p[2] for p in plans])),
        luts=torch.from_numpy(np.stack([_lut(name, m) for name, m in ops])).float(),
        # float32 factor: PIL's blend takes its alpha as a C float
        rows=torch.tensor([_row(name, m) for name, m in ops], dtype=torch.float32),
    )


class AutoAugmentCIFAR10(BatchedOp):
    """The authors' CIFAR10Policy (`cifar_autoaugment.CifarAutoAugment`), each sample drawing its
    own sub-policy, on float batches in [0, 1] (values are kept as the integers 0..255).

    Each of the two slots runs three batched stages that are exact no-ops for samples whose op is
    elsewhere: resampling (`resample`: bicubic shear, nearest translate and rotate, grey fill),
    a gather through per-channel LUTs (posterize, solarize, invert, autocontrast, equalize) and a
    blend with a degenerate image (brightness, color, contrast, sharpness), all in PIL's arithmetic.
    """

    def __init__(self, policy: Sequence[SubPolicy] = CIFAR10_POLICY) -> None:
        super().__init__()
        self.policy = tuple(tuple(p) for p in policy)
        self._tables: dict[tuple[torch.device, int, int], tuple[Entries, Tensor]] = {}

    @property
    def identity_entry(self) -> int:
        return 4 * len(self.policy)

    def entry_ops(self) -> list[tuple[str, float]]:
        """(op, signed magnitude) of each entry: index (policy * 2 + slot) * 2 + negative; last = identity."""
        ops = []
        for sp in self.policy:
            for name, _, bin_ in sp:
                m = magnitude(name, bin_)
                ops += [(name, m), (name, -m if name in SIGNED_OPS else m)]
        return ops + [("Identity", 0.0)]

    def tables(self, device: torch.device, h: int, w: int) -> tuple[Entries, Tensor]:
        """(entries, probs (P, 2)) on `device`, built once per device and size."""
        key = (device, h, w)
        if key not in self._tables:
            entries = build_entries(self.entry_ops(), h, w)
            probs = torch.tensor([[p for _, p, _ in sp] for sp in self.policy], dtype=torch.float32)
            self._tables[key] = (Entries(*(t.to(device) for t in entries)), probs.to(device))
        return self._tables[key]

    def sample(self, x: Tensor, generator: Generator = None) -> Tensor:
        """Per-sample entries (B, 2): sub-policy, apply (prob), sign (1/2)."""
        b, _, h, w = x.shape
        _, probs = self.tables(x.device, h, w)
        n = len(self.policy)
        r = _rand((b, 5), x, generator)
        pol = (r[:, 0] * n).long().clamp_(max=n - 1)
        apply = r[:, 1:3] <= probs[pol]
        entry = (4 * pol)[:, None] + 2 * torch.arange(2, device=x.device) + (r[:, 3:5] <= 0.5).long()
        return torch.where(apply, entry, self.identity_entry)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        entries, _ = self.tables(x.device, x.shape[2], x.shape[3])
        entry = self.sample(x, generator)
        y = (x * 255.0).round()
        for slot in range(entry.shape[1]):
            y = apply_entries(y, entries.select(entry[:, slot]))
        return y / 255.0


def apply_op(y: Tensor, name: str, m: float) -> Tensor:
    """One op with signed magnitude m on the whole batch y (B, C, H, W) of integers 0..255."""
    b, _, h, w = y.shape
    entries = build_entries([(name, m)], h, w)
    return apply_entries(y, Entries(*(t.to(y.device).expand(b, *t.shape[1:]) for t in entries)))


def apply_entries(y: Tensor, e: Entries) -> Tensor:
    """Apply per-sample entries (each table with a leading B) to y (B, C, H, W) of integers 0..255."""
    y = resample(y, e.taps, e.frac, e.inside)
    y = apply_luts(y, e.luts, e.rows[:, 4] > 0.5, e.rows[:, 5] > 0.5)
    return blend(y, e.rows)


def _pil_cubic(v1: Tensor, v2: Tensor, v3: Tensor, v4: Tensor, d: Tensor) -> Tensor:
    """PIL's BICUBIC macro (cubic convolution with a = -1), operation for operation."""
    p1 = v2
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return p1 + d * (p2 + d * (p3 + d * p4))


def resample(y: Tensor, taps: Tensor, frac: Tensor, inside: Tensor) -> Tensor:
    """Per-sample resampling (B, N, 16) taps / (B, N, 2) offsets / (B, N) inside, as PIL's bicubic
    filter in float64: cubic along rows then down the column, clipped to 0..255 and truncated;
    FILL outside. Nearest ops have zero offsets, which return the second tap exactly."""
    b, c, h, w = y.shape
    n = h * w
    v = y.double().reshape(b, c, n).gather(2, taps.reshape(b, 1, n * 16).expand(b, c, n * 16))
    v = v.view(b, c, n, 4, 4)
    dx, dy = frac[:, None, :, 0, None], frac[:, None, :, 1]
    rows = _pil_cubic(*v.unbind(4), dx)  # (B, C, N, 4): one value per tap row
    out = _pil_cubic(*rows.unbind(3), dy).clamp_(0.0, 255.0).floor_()
    return torch.where(inside[:, None], out, float(FILL)).to(y.dtype).view(b, c, h, w)


def apply_luts(y: Tensor, luts: Tensor, is_auto: Tensor, is_equal: Tensor) -> Tensor:
    """Per-sample fixed LUTs (B, 256), or per-channel autocontrast / equalize LUTs where flagged."""
    b, c, h, w = y.shape
    flat = y.reshape(b, c, h * w)
    idx = flat.long()
    table = torch.where(is_auto.view(b, 1, 1), _autocontrast_lut(flat), luts.view(b, 1, 256))
    table = torch.where(is_equal.view(b, 1, 1), _equalize_lut(idx.view(b * c, h * w)).view(b, c, 256), table)
    return table.gather(2, idx).view(b, c, h, w)


def _autocontrast_lut(flat: Tensor) -> Tensor:
    """PIL ImageOps.autocontrast LUTs (B, C, 256): int(i * scale + offset) in float64, clipped;
    a constant channel is left as it is."""
    lo, hi = torch.aminmax(flat.double(), dim=2, keepdim=True)
    flat_range = hi <= lo
    # a true division: `255.0 / t` would be reciprocal(t) * 255, rounded differently
    scale = torch.full_like(hi, 255.0) / torch.where(flat_range, 1.0, hi - lo)
    offset = -lo * scale
    v = torch.arange(256, device=flat.device, dtype=torch.float64)
    lut = (v * scale + offset).clamp_(0.0, 255.0).floor_()  # clamp first: int() truncates to 0
    return torch.where(flat_range, v, lut).to(flat.dtype)


def _equalize_lut(flat: Tensor) -> Tensor:
    """PIL ImageOps.equalize LUTs from integer pixels (N, P) long -> (N, 256) float."""
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


_SMOOTH: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}


def _smooth_kernel(c: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """PIL's ImageFilter.SMOOTH: 3x3 ones with 5 in the centre, / 13."""
    key = (c, device, dtype)
    if key not in _SMOOTH:
        k = torch.full((3, 3), 1.0 / 13.0, dtype=dtype)
        k[1, 1] = 5.0 / 13.0
        _SMOOTH[key] = k.expand(c, 1, 3, 3).contiguous().to(device)
    return _SMOOTH[key]


def _pil_gray(y: Tensor) -> Tensor:
    """PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 2^15) >> 16, exact in float32 (< 2^24)."""
    r, g, b = y.unbind(1)
    return torch.floor((r * 19595.0 + g * 38470.0 + b * 7471.0 + 32768.0) / 65536.0).unsqueeze(1)


def blend(y: Tensor, rows: Tensor) -> Tensor:
    """ImageEnhance per sample: degenerate + factor * (image - degenerate) in float32 (PIL's
    Image.blend), clipped and truncated. The degenerate is black (brightness), the grey image
    (color), its rounded mean (contrast) or the SMOOTH-filtered image with the border kept
    (sharpness). Factor 1 (every other op) returns y exactly."""
    b, c, h, w = y.shape
    factor, is_color, is_contrast, is_sharp = (rows[:, k].view(b, 1, 1, 1) for k in range(4))
    gray = _pil_gray(y)
    mean = torch.floor(gray.double().mean((1, 2, 3), keepdim=True) + 0.5).float()  # int(mean + 0.5)
    smooth = F.conv2d(y, _smooth_kernel(c, y.device, y.dtype), groups=c).round_()
    smooth = F.pad(smooth - y[:, :, 1:-1, 1:-1], (1, 1, 1, 1)) + y  # border pixels kept
    degenerate = torch.where(is_color > 0.5, gray.expand_as(y), torch.zeros_like(y))
    degenerate = torch.where(is_contrast > 0.5, mean.expand_as(y), degenerate)
    degenerate = torch.where(is_sharp > 0.5, smooth, degenerate)
    return (degenerate + factor * (y - degenerate)).clamp_(0.0, 255.0).floor_()
