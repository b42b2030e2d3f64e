"""AutoAugment's CIFAR10 policy applied to whole batches, one random sub-policy per sample.

Ops are rows of one table (affine matrix, blend factors, flags) so that a batch with a
different op per sample runs as a few batched kernels with no host synchronisation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gpaco.data.batched_ops import BatchedOp, Generator, _gray, _rand

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


class AutoAugmentCIFAR10(BatchedOp):
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
