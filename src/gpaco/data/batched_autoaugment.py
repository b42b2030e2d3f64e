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
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from gpaco.data.batched_ops import BatchedOp, Generator, _rand
from gpaco.data.cifar_autoaugment import (AFFINE_MATRICES, CIFAR10_POLICY, FILL, RESAMPLE,
                                          SIGNED_OPS, SubPolicy, geometric_op, magnitude)

BLENDS = ("Brightness", "Color", "Contrast", "Sharpness")  # PIL ImageEnhance: blend with a degenerate
FLAGS = ("Color", "Contrast", "Sharpness", "AutoContrast", "Equalize")  # row = factor | one flag each
COLUMN = {name: 1 + k for k, name in enumerate(FLAGS)}
FIXED_LUT_OPS = {  # ops that are one LUT whatever the image: PIL's own, read off a 0..255 ramp
    "Posterize": lambda img, m: ImageOps.posterize(img, int(m)),
    "Solarize": ImageOps.solarize,
    "Invert": lambda img, m: ImageOps.invert(img),
}


IDENTITY, RESAMPLING, LUT, BLEND = range(4)  # the one stage an op changes the image in


def _stage(name: str) -> int:
    if name in RESAMPLE:
        return RESAMPLING
    if name in FIXED_LUT_OPS or name in ("AutoContrast", "Equalize"):
        return LUT
    return BLEND if name in BLENDS else IDENTITY


class Entries(NamedTuple):
    """Per-entry tables (E entries; N = H * W output pixels).

    taps (E, N, 4) long: the 4 input pixels (clamped to the image) along the one axis an op
    resamples, around each output pixel's sampling position; frac (E, N) float64: the position's
    offset from the second tap (0 for nearest ops); inside (E, N) bool: False where PIL fills;
    luts (E, 256); rows (E, 6): blend factor, then one flag per FLAGS; stage (E,) long: the
    stage the op works in (the other two are exact no-ops for it).
    """

    taps: Tensor
    frac: Tensor
    inside: Tensor
    luts: Tensor
    rows: Tensor
    stage: Tensor

    def select(self, entry: Tensor) -> Entries:
        return Entries(*(t[entry] for t in self))


Plan = tuple[np.ndarray, np.ndarray, np.ndarray]  # taps (N, 4), frac (N,), inside (N,)
_K = np.arange(-1, 3)  # tap offsets from floor(position - 0.5)


def _identity_plan(h: int, w: int) -> Plan:
    src = np.arange(h * w)
    return src[:, None] + np.zeros_like(_K), np.zeros(h * w), np.ones(h * w, dtype=bool)


def _nearest_plan(name: str, m: float, h: int, w: int) -> Plan:
    """Which input pixel PIL's nearest op copies to each output pixel, asked of PIL itself: the op
    on an image whose pixels hold their own index (fill -1 marks the uncovered pixels). All four
    taps are that pixel, so the cubic returns it whatever the offset."""
    index = Image.fromarray(np.arange(h * w, dtype=np.int32).reshape(h, w))  # mode "I"
    src = np.asarray(geometric_op(index, name, m, fill=-1)).reshape(-1).astype(np.int64)
    inside = src >= 0
    src = np.where(inside, src, 0)
    return src[:, None] + np.zeros_like(_K), np.zeros(h * w), inside


def _bicubic_plan(name: str, m: float, h: int, w: int) -> Plan:
    """PIL's bicubic affine sampling (Geometry.c) in its float64 operations: position
    a0 (x + .5) + a1 (y + .5) + a2 (and likewise y), filled where outside the image, else a 4 x 4
    cubic from floor(position - .5) - 1. A shear moves along one axis only: the offset along the
    other is 0, where PIL's cubic returns its second tap exactly, so 4 taps along the moving axis
    give the same result."""
    a0, a1, a2, a3, a4, a5 = (float(v) for v in AFFINE_MATRICES[name](m, w, h))
    y, x = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    xin = (a0 * x + a1 * y + a2).reshape(-1)
    yin = (a3 * x + a4 * y + a5).reshape(-1)
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    col, row = np.floor(xin - 0.5), np.floor(yin - 0.5)
    dx, dy = (xin - 0.5) - col, (yin - 0.5) - row
    col, row = col.astype(np.int64), row.astype(np.int64)
    if not dy[inside].any():  # moves along x
        taps = np.clip(row, 0, h - 1)[:, None] * w + np.clip(col[:, None] + _K, 0, w - 1)
        return taps, np.where(inside, dx, 0.0), inside
    if not dx[inside].any():  # moves along y
        taps = np.clip(row[:, None] + _K, 0, h - 1) * w + np.clip(col, 0, w - 1)[:, None]
        return taps, np.where(inside, dy, 0.0), inside
    raise ValueError(f"{name} resamples along both axes: the batched bicubic handles one")


def _plan(name: str, m: float, h: int, w: int) -> Plan:
    if name not in RESAMPLE:
        return _identity_plan(h, w)
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
        frac=torch.from_numpy(np.stack([p[1] for p in plans])),
        inside=torch.from_numpy(np.stack([p[2] for p in plans])),
        luts=torch.from_numpy(np.stack([_lut(name, m) for name, m in ops])).float(),
        # float32 factor: PIL's blend takes its alpha as a C float
        rows=torch.tensor([_row(name, m) for name, m in ops], dtype=torch.float32),
        stage=torch.tensor([_stage(name) for name, _ in ops], dtype=torch.int64),
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
            y = apply_entries(y, entries.select(entry[:, slot]), capturable=self.capturable)
        return y / 255.0


def apply_op(y: Tensor, name: str, m: float) -> Tensor:
    """One op with signed magnitude m on the whole batch y (B, C, H, W) of integers 0..255."""
    b, _, h, w = y.shape
    entries = build_entries([(name, m)], h, w)
    return apply_entries(y, Entries(*(t.to(y.device).expand(b, *t.shape[1:]) for t in entries)))


def apply_entries(y: Tensor, e: Entries, capturable: bool = True) -> Tensor:
    """Apply per-sample entries (each table with a leading B) to y (B, C, H, W) of integers 0..255.

    On a GPU, or `capturable`: every sample through all three stages (fixed shapes, no host
    synchronisation, as a CUDA graph and a GPU's queue want); on the CPU each sample through its
    op's stage only, the same pixels at about a third of the work."""
    if capturable or y.is_cuda:
        return _blend_stage(_lut_stage(_resample_stage(y, e), e), e)
    out = y.clone()
    for stage, run in ((RESAMPLING, _resample_stage), (LUT, _lut_stage), (BLEND, _blend_stage)):
        rows = (e.stage == stage).nonzero().squeeze(1)
        if len(rows):
            out[rows] = run(y[rows], e.select(rows), capturable=False)
    return out


def _resample_stage(y: Tensor, e: Entries, capturable: bool = True) -> Tensor:
    return resample(y, e.taps, e.frac, e.inside)


def _lut_stage(y: Tensor, e: Entries, capturable: bool = True) -> Tensor:
    return apply_luts(y, e.luts, e.rows[:, COLUMN["AutoContrast"]] > 0.5,
                      e.rows[:, COLUMN["Equalize"]] > 0.5, capturable)


def _blend_stage(y: Tensor, e: Entries, capturable: bool = True) -> Tensor:
    return blend(y, e.rows, capturable)


def _pil_cubic(v1: Tensor, v2: Tensor, v3: Tensor, v4: Tensor, d: Tensor) -> Tensor:
    """PIL's BICUBIC macro (cubic convolution with a = -1) on integer pixels, operation for
    operation: the p terms are small integers, exact in float32; the polynomial in d is float64."""
    p2 = (-v1 + v3).double()
    p3 = (2 * (v1 - v2) + v3 - v4).double()
    p4 = (-v1 + v2 - v3 + v4).double()
    return v2.double() + d * (p2 + d * (p3 + d * p4))


def resample(y: Tensor, taps: Tensor, frac: Tensor, inside: Tensor) -> Tensor:
    """Per-sample resampling by (B, N, 4) taps, (B, N) offsets and (B, N) inside masks: PIL's
    bicubic filter, clipped to 0..255 and truncated; FILL outside. Nearest ops (four equal taps)
    and the identity come out exactly."""
    b, c, h, w = y.shape
    n = h * w
    v = y.reshape(b, c, n).gather(2, taps.reshape(b, 1, n * 4).expand(b, c, n * 4))
    out = _pil_cubic(*v.view(b, c, n, 4).unbind(3), frac[:, None]).clamp_(0.0, 255.0).floor_()
    return torch.where(inside[:, None], out, float(FILL)).to(y.dtype).view(b, c, h, w)


def apply_luts(y: Tensor, luts: Tensor, is_auto: Tensor, is_equal: Tensor,
               capturable: bool = True) -> Tensor:
    """Per-sample fixed LUTs (B, 256), or per-channel autocontrast / equalize LUTs where flagged.
    `capturable` (a GPU, a CUDA graph): both image LUTs for every sample, fixed shapes; else
    (the CPU) each only for the samples it is flagged for: the same tables."""
    b, c, h, w = y.shape
    flat = y.reshape(b, c, h * w)
    idx = flat.long()
    if capturable:
        table = torch.where(is_auto.view(b, 1, 1), _autocontrast_lut(flat), luts.view(b, 1, 256))
        table = torch.where(is_equal.view(b, 1, 1),
                            _equalize_lut(idx.view(b * c, h * w)).view(b, c, 256), table)
        return table.gather(2, idx).view(b, c, h, w)
    table = luts.view(b, 1, 256).expand(b, c, 256).clone()
    rows = is_auto.nonzero().squeeze(1)
    if len(rows):
        table[rows] = _autocontrast_lut(flat[rows])
    rows = is_equal.nonzero().squeeze(1)
    if len(rows):
        table[rows] = _equalize_lut(idx[rows].view(-1, h * w)).view(-1, c, 256)
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


def _smooth(y: Tensor) -> Tensor:
    """PIL's ImageFilter.SMOOTH (3x3 ones, 5 in the centre, / 13, rounded) with the border pixels
    kept. Summed as integers (a separable box sum), so exact on any device: a float32 conv may
    run in TF32 on CUDA."""
    rows = y[:, :, :, :-2] + y[:, :, :, 1:-1] + y[:, :, :, 2:]
    inner = y[:, :, 1:-1, 1:-1]
    total = rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:] + 4.0 * inner
    return F.pad((total / 13.0).round_() - inner, (1, 1, 1, 1)) + y


def _pil_gray(y: Tensor) -> Tensor:
    """PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 2^15) >> 16, exact in float32 (< 2^24)."""
    r, g, b = y.unbind(1)
    return torch.floor((r * 19595.0 + g * 38470.0 + b * 7471.0 + 32768.0) / 65536.0).unsqueeze(1)


def _contrast_mean(gray: Tensor) -> Tensor:
    """ImageEnhance.Contrast's degenerate: the grey image's rounded mean, int(mean + 0.5)."""
    return torch.floor(gray.double().mean((1, 2, 3), keepdim=True) + 0.5).float()


# name -> degenerate of (image, its grey image)
_DEGENERATES = (("Color", lambda y, gray: gray.expand_as(y)),
                ("Contrast", lambda y, gray: _contrast_mean(gray).expand_as(y)),
                ("Sharpness", lambda y, gray: _smooth(y)))


def blend(y: Tensor, rows: Tensor, capturable: bool = True) -> Tensor:
    """ImageEnhance per sample: degenerate + factor * (image - degenerate) in float32 (PIL's
    Image.blend), clipped and truncated. The degenerate is black (brightness), the grey image
    (color), its rounded mean (contrast) or the SMOOTH-filtered image with the border kept
    (sharpness). Factor 1 (every other op) returns y exactly. `capturable` (a GPU, a CUDA
    graph): every degenerate for every sample; else (the CPU) each only for its samples."""
    factor = rows[:, 0].view(-1, 1, 1, 1)
    degenerate = torch.zeros_like(y)
    gray = _pil_gray(y) if capturable else None  # once for color and contrast
    for name, make in _DEGENERATES:
        flagged = rows[:, COLUMN[name]] > 0.5
        if capturable:
            degenerate = torch.where(flagged.view(-1, 1, 1, 1), make(y, gray), degenerate)
            continue
        chosen = flagged.nonzero().squeeze(1)
        if len(chosen):
            sub = y[chosen]
            degenerate[chosen] = make(sub, _pil_gray(sub))
    return (degenerate + factor * (y - degenerate)).clamp_(0.0, 255.0).floor_()
