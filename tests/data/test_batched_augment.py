"""Batched augmentations (gpaco.data.batched_ops, batched_autoaugment, batched_views) against the
CPU transforms they replace (torchvision, and the PIL AutoAugment of gpaco.data.cifar_autoaugment).

Runs on CPU; every test that takes `device` also runs on CUDA when one is present.
Tolerances: AutoAugment (ops on uint8 values) must match the PIL transform it replaces
(gpaco.data.cifar_autoaugment) to within 1/255 on at most 0.5% of the pixels (on CPU they match
exactly; the slack is for float rounding on other devices). Float ops (jitter, blur, hue) match
torchvision to ~1e-5.
Random parameters are checked by their distributions (loose, seeded: no flakiness).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from gpaco.data import batched_autoaugment as A
from gpaco.data import cifar_autoaugment as C
from gpaco.data import batched_ops as O
from gpaco.data import batched_views as V
from gpaco.data.transforms import CIFAR_MEAN, CIFAR_STD, build_transform
from gpaco.errors import UserError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# many tiny ops: intra-op threads only add overhead (tests/data/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def images(b: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Natural-ish uint8 (B, 3, H, W): smooth colour fields plus noise, one constant image."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(b, 3, 6, 6, generator=g), size=(size, size), mode="bilinear")
    x = base * 200 + torch.randint(0, 50, (b, 3, size, size), generator=g)
    x = x.clamp(0, 255).to(torch.uint8)
    x[0] = 77  # a constant image (autocontrast / equalize edge case)
    return x


def gen(device: str, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def shape_only(b: int, h: int = 32, w: int = 32) -> torch.Tensor:
    """A batch whose only use is its shape (parameter sampling), without the memory."""
    return torch.empty(1, 3, h, w).expand(b, 3, h, w)


# --------------------------------------------------------------------------------------------
def test_to_float_nchw_layouts() -> None:
    x = images(4)
    ref = x.float() / 255
    torch.testing.assert_close(O.to_float_nchw(x), ref)
    torch.testing.assert_close(O.to_float_nchw(x.permute(0, 2, 3, 1)), ref)
    torch.testing.assert_close(O.to_float_nchw(ref.double()), ref)
    assert O.to_float_nchw(x).is_contiguous()
    with pytest.raises(ValueError):
        O.to_float_nchw(x[0])


# --------------------------------------------------------------------------------------------
def test_crop_pad_offsets_uniform() -> None:
    dy, dx = O.RandomCropPad(32, padding=4).sample_offsets(shape_only(9000), gen("cpu"))
    for d in (dy, dx):
        counts = torch.bincount(d, minlength=9).float() / len(d)
        assert d.min() == 0 and d.max() == 8
        assert (counts - 1 / 9).abs().max() < 0.02
    assert abs(np.corrcoef(dy.numpy(), dx.numpy())[0, 1]) < 0.05


@pytest.mark.parametrize("device", DEVICES)
def test_crop_pad_matches_torchvision_crop(device: str) -> None:
    x = images(16).to(device).float()
    op = O.RandomCropPad(32, padding=4)
    dy, dx = op.sample_offsets(x, gen(device))
    out = op.apply(x, dy, dx)
    for i in range(len(x)):
        ref = TF.crop(TF.pad(x[i], [4]), int(dy[i]), int(dx[i]), 32, 32)
        assert torch.equal(out[i], ref)
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 8  # per-sample offsets


def test_crop_pad_smaller_size() -> None:
    out = O.RandomCropPad(28, padding=2)(images(4).float(), gen("cpu"))
    assert out.shape == (4, 3, 28, 28)


# --------------------------------------------------------------------------------------------
def test_hflip_rate_and_identity() -> None:
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(4000, 1, 1, 2)
    out = O.HFlip(0.5)(x, gen("cpu"))
    rate = (out[:, 0, 0, 0] == 1).float().mean().item()
    assert abs(rate - 0.5) < 0.03
    imgs = images(4).float()
    assert torch.equal(O.HFlip(0.0)(imgs), imgs)
    assert torch.equal(O.HFlip(1.0)(imgs), imgs.flip(-1))


# --------------------------------------------------------------------------------------------
def _tv_rrc_stats(scale: tuple[float, float], n: int) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    img = torch.empty(3, 32, 32)
    boxes = [v2.RandomResizedCrop.get_params(img, list(scale), [3 / 4, 4 / 3]) for _ in range(n)]
    h, w = np.array([b[2] for b in boxes]), np.array([b[3] for b in boxes])
    return h * w / 1024, w / h


@pytest.mark.parametrize("scale", [(0.2, 1.0), (0.08, 1.0)])
def test_rrc_box_distribution_matches_torchvision(scale: tuple[float, float]) -> None:
    n = 3000
    boxes = O.RandomResizedCrop(32, scale=scale).sample_boxes(shape_only(n), gen("cpu"))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 32).all()
    area, aspect = (h * w / 1024).numpy(), (w / h).numpy()
    tv_area, tv_aspect = _tv_rrc_stats(scale, n)
    for ours, ref in ((area, tv_area), (aspect, tv_aspect)):
        for q in (0.1, 0.5, 0.9):
            assert abs(np.quantile(ours, q) - np.quantile(ref, q)) < 0.05 * max(1.0, np.quantile(ref, q))
        assert abs(ours.mean() - ref.mean()) < 0.03


def test_rrc_falls_back_to_centre_crop() -> None:
    op = O.RandomResizedCrop(32, scale=(0.9, 1.0), ratio=(10.0, 20.0))  # never fits in 32x32
    boxes = op.sample_boxes(shape_only(8), gen("cpu"))
    assert (boxes == torch.tensor([14.0, 0.0, 3.0, 32.0])).all()  # h = round(32 / 10), centred


@pytest.mark.parametrize("device", DEVICES)
def test_rrc_resampling_matches_resize(device: str) -> None:
    x = images(4).to(device).float() / 255
    op = O.RandomResizedCrop(32)
    full = torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 4, device=device)
    torch.testing.assert_close(op.apply(x, full), x, atol=1e-5, rtol=0)
    box = torch.tensor([[5.0, 3.0, 16.0, 20.0]] * 4, device=device)  # top, left, h, w
    out = op.apply(x, box)
    ref = TF.resized_crop(x, 5, 3, 16, 20, [32, 32], antialias=False)
    # same bilinear sample points; roi_align reads the pixels just outside the crop at its edge
    torch.testing.assert_close(out[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-5, rtol=0)


def test_rrc_output_shape_and_per_sample() -> None:
    out = O.RandomResizedCrop(24, scale=(0.2, 1.0))(images(8).float() / 255, gen("cpu"))
    assert out.shape == (8, 3, 24, 24)
    boxes = O.RandomResizedCrop(24).sample_boxes(shape_only(8), gen("cpu"))
    assert len({tuple(b.tolist()) for b in boxes}) > 4


# --------------------------------------------------------------------------------------------
def _tv_jitter(img: torch.Tensor, factors: torch.Tensor, hue: float, order: list[int]) -> torch.Tensor:
    fns = [
        lambda t: TF.adjust_brightness(t, float(factors[0])),
        lambda t: TF.adjust_contrast(t, float(factors[1])),
        lambda t: TF.adjust_saturation(t, float(factors[2])),
        lambda t: TF.adjust_hue(t, hue),
    ]
    for k in order:
        img = fns[k](img)
    return img


@pytest.mark.parametrize("device", DEVICES)
def test_color_jitter_matches_torchvision_in_per_sample_order(device: str) -> None:
    x = images(24).to(device).float() / 255
    op = O.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)
    factors, hue, order, apply = op.sample(x, gen(device, 5))
    out = op(x, gen(device, 5))
    for i in range(len(x)):
        ref = _tv_jitter(x[i], factors[i], float(hue[i]), order[i].tolist()) if apply[i] else x[i]
        torch.testing.assert_close(out[i], ref, atol=2e-5, rtol=0)
    assert 0 < apply.sum() < len(x)


def test_color_jitter_without_hue_matches_torchvision() -> None:
    x = images(16).float() / 255
    op = O.ColorJitter(0.4, 0.4, 0.4, 0.0)
    factors, _, order, _ = op.sample(x, gen("cpu", 2))
    out = op(x, gen("cpu", 2))
    for i in range(len(x)):
        ref = _tv_jitter(x[i], factors[i], 0.0, [k for k in order[i].tolist() if k != 3])
        torch.testing.assert_close(out[i], ref, atol=2e-5, rtol=0)


def test_color_jitter_order_is_per_sample_and_uniform() -> None:
    _, _, order, _ = O.ColorJitter(0.4, 0.4, 0.4, 0.1).sample(shape_only(4800), gen("cpu"))
    counts = {}
    for row in order.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    assert set(counts) == set(itertools.permutations(range(4)))
    assert max(abs(c / 4800 - 1 / 24) for c in counts.values()) < 0.015


def test_color_jitter_statistics_match_torchvision() -> None:
    x = images(300, size=16, seed=1).float() / 255
    ours = O.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)(x, gen("cpu"))
    torch.manual_seed(0)
    tv = v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)
    theirs = torch.stack([tv(img) for img in x])
    for stat in (lambda t: t.mean((1, 2, 3)), lambda t: t.std((1, 2, 3))):
        assert _same_distribution(stat(ours) - stat(x), stat(theirs) - stat(x), ratio_tol=0.15)


def test_color_jitter_identity_when_off() -> None:
    x = images(8).float() / 255
    assert torch.equal(O.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.0)(x, gen("cpu")), x)
    assert torch.equal(O.ColorJitter()(x, gen("cpu")), x)


def test_adjust_hue_matches_torchvision() -> None:
    x = images(9).float() / 255
    hue = torch.linspace(-0.5, 0.5, 9)
    ref = torch.stack([TF.adjust_hue(x[i], float(hue[i])) for i in range(9)])
    torch.testing.assert_close(O.adjust_hue(x, hue), ref, atol=2e-5, rtol=0)


# --------------------------------------------------------------------------------------------
def test_grayscale() -> None:
    x = images(8).float() / 255
    torch.testing.assert_close(O.Grayscale(1.0)(x), TF.rgb_to_grayscale(x, 3))
    assert torch.equal(O.Grayscale(0.0)(x), x)
    out = O.Grayscale(0.2)(shape_only(3000, 1, 3).contiguous().uniform_(), gen("cpu"))
    rate = (out[:, 0] == out[:, 1]).all(-1).all(-1).float().mean().item()
    assert abs(rate - 0.2) < 0.03


def _pil_blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from PIL import ImageFilter

    img = Image.fromarray(x.permute(1, 2, 0).numpy())
    return torch.from_numpy(np.array(img.filter(ImageFilter.GaussianBlur(radius=sigma)))).permute(2, 0, 1)


def test_blur_is_pils_gaussian_blur_in_float64() -> None:
    """The box passes and fixed point of PIL's blur: exact in float64, whatever the sigma."""
    x = images(7, size=40)
    sigma = torch.tensor([0.1, 0.5, 0.73, 1.0, 1.37, 1.5, 2.0])
    out = (O.pil_blur(x.double() / 255, sigma) * 255).round().to(torch.uint8)
    for i in range(7):
        assert torch.equal(out[i], _pil_blurred(x[i], float(sigma[i]))), float(sigma[i])


@pytest.mark.parametrize("device", DEVICES)
def test_blur_matches_pil_within_rounding_in_float32(device: str) -> None:
    """float32 breaks some of the fixed point's ties: a level or two on few pixels."""
    x = images(6, size=40)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 1.9, 2.0])
    out = (O.pil_blur(x.to(device).float() / 255, sigma.to(device)) * 255).round().cpu()
    ref = torch.stack([_pil_blurred(x[i], float(sigma[i])) for i in range(6)]).float()
    diff = (out - ref).abs()
    assert diff.max() <= 3 and (diff > 0).float().mean() < 0.15


def test_gaussian_blur_op_per_sample_sigma() -> None:
    x = images(8).float() / 255
    op = O.GaussianBlur((0.1, 2.0), p=1.0)
    r = torch.rand((2, 8), generator=gen("cpu", 4))  # the op's draws: sigma, apply
    sigma = 0.1 + 1.9 * r[0]
    torch.testing.assert_close(op(x, gen("cpu", 4)), O.pil_blur(x, sigma))
    assert torch.equal(O.GaussianBlur(p=0.0)(x), x)
    rate = (O.GaussianBlur(p=0.3)(x.repeat(100, 1, 1, 1), gen("cpu", 5)) != x.repeat(100, 1, 1, 1))
    assert abs(rate.flatten(1).any(1)[8:].float().mean().item() - 0.3) < 0.06


def test_gaussian_blur_on_the_cpu_blurs_only_the_chosen_samples_to_the_same_pixels() -> None:
    """The CPU blurs the chosen rows only; the capturable form blurs all and keeps the chosen:
    the same values, drawn from the same stream."""
    x = images(16).float() / 255
    rows_only, every = O.GaussianBlur(p=0.5), O.GaussianBlur(p=0.5)
    every.capturable = True
    out = rows_only(x, gen("cpu", 7))
    assert torch.equal(out, every(x, gen("cpu", 7)))
    blurred = (out != x).flatten(1).any(1)
    assert 0 < int(blurred.sum()) < 16  # both kinds of sample present


# --------------------------------------------------------------------------------------------
def _cutout_expected_area(h: int, size: int) -> float:
    half = size // 2
    ext = [min(c + half, h) - max(c - half, 0) for c in range(h)]
    return (sum(ext) / h) ** 2 / h**2


@pytest.mark.parametrize("h,size", [(32, 16), (28, 14)])
def test_cutout_area_and_values(h: int, size: int) -> None:
    x = torch.rand(2000, 3, h, h) * 0.9 + 0.1
    out = O.Cutout(size)(x, gen("cpu"))
    hole = out == 0
    assert (hole[:, 0] == hole[:, 1]).all() and (hole[:, 0] == hole[:, 2]).all()
    assert torch.equal(out[~hole], x[~hole])
    frac = hole[:, 0].float().mean((1, 2))
    assert abs(frac.mean().item() - _cutout_expected_area(h, size)) < 0.01
    assert frac.max() <= size * size / h**2 + 1e-6
    rows, cols = hole[:, 0].any(2).sum(1), hole[:, 0].any(1).sum(1)
    assert torch.equal(hole[:, 0].sum((1, 2)), rows * cols)  # a (clipped) rectangle
    assert torch.equal(O.Cutout(size, p=0.0)(x), x)


# --------------------------------------------------------------------------------------------
# AutoAugment: the authors' CIFAR policy, against the PIL transform (gpaco.data.cifar_autoaugment)
def _pil_images(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in x]


def _tensor(imgs: list[Image.Image]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(img)).permute(2, 0, 1) for img in imgs]).float()


def _pil_op(x: torch.Tensor, name: str, m: float) -> torch.Tensor:
    aa = C.CifarAutoAugment()
    return _tensor([aa.apply_op(img, name, m) for img in _pil_images(x)])


def _aa_inputs(size: int = 32) -> torch.Tensor:
    """Natural-ish images (one constant) and uniform noise (every bicubic overshoot clips)."""
    noise = torch.randint(0, 256, (4, 3, size, size), generator=torch.Generator().manual_seed(1))
    return torch.cat([images(8, size), noise.to(torch.uint8)])


def _signed_magnitudes(name: str) -> list[float]:
    return [s * C.magnitude(name, b) for b in range(10) for s in ((1, -1) if name in C.SIGNED_OPS else (1,))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(C.MAGNITUDES))
def test_autoaugment_op_matches_pil(device: str, name: str) -> None:
    """Every op, every bin and sign, equals the PIL transform's op (exactly on CPU)."""
    sizes = (32, 28) if name in C.GEOMETRIC_OPS else (32,)
    for size in sizes:
        x = _aa_inputs(size)
        for m in _signed_magnitudes(name):
            ref = _pil_op(x, name, m)
            out = A.apply_op(x.float().to(device), name, m).cpu()
            diff = (out - ref).abs()
            assert diff.max() <= 1, (name, size, m)
            assert (diff > 0).float().mean() <= 0.005, (name, size, m)
            if device == "cpu":
                assert torch.equal(out, ref), (name, size, m)


@pytest.mark.parametrize("name", ["TranslateX", "TranslateY"])
def test_autoaugment_translate_fills_grey_on_white(name: str) -> None:
    white = torch.full((1, 3, 32, 32), 255.0)
    for m in _signed_magnitudes(name)[2:]:  # bin 0 moves nothing
        out = A.apply_op(white, name, m)
        assert (out == 128).any() and not (out == 0).any(), m
        # PIL's nearest rounds the offset: bin 9 (14.5 px) uncovers 15 lines, not torchvision's 14
        lines = (out[0, 0] == 128).all(0 if name == "TranslateX" else 1).sum().item()
        assert lines == math.floor(abs(m) * 32 + 0.5), m


def _pil_affine(x: torch.Tensor, matrix: tuple[float, ...], resample: int) -> torch.Tensor:
    return _tensor([img.transform(img.size, Image.AFFINE, matrix, resample, fillcolor=(128,) * 3)
                    for img in _pil_images(x)])


def test_autoaugment_shear_is_pils_bicubic() -> None:
    x = _aa_inputs()
    for name, matrix in (("ShearX", lambda m: (1, m, 0, 0, 1, 0)), ("ShearY", lambda m: (1, 0, 0, m, 1, 0))):
        for m in (0.3, -0.2667, 0.1):
            out = A.apply_op(x.float(), name, m)
            assert torch.equal(out, _pil_affine(x, matrix(m), Image.BICUBIC)), (name, m)
            assert not torch.equal(out, _pil_affine(x, matrix(m), Image.NEAREST))
    white = A.apply_op(torch.full((1, 3, 32, 32), 255.0), "ShearY", 0.3)
    assert (white == 128).any() and not (white == 0).any()


def test_autoaugment_rotate_is_unsigned_and_solarize_256_based() -> None:
    aa = A.AutoAugmentCIFAR10()
    rotations = [m for name, m in aa.entry_ops() if name == "Rotate"]
    assert rotations and all(m == C.magnitude("Rotate", 2) > 0 for m in rotations)
    ramp = torch.arange(256.0).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    out = A.apply_op(ramp, "Solarize", C.magnitude("Solarize", 2))  # threshold 256 * 7 / 9 = 199.1
    assert out[0, 0].flatten()[199] == 199 and out[0, 0].flatten()[200] == 55  # torchvision: 199 -> 56
    assert torch.equal(A.apply_op(ramp, "Solarize", C.magnitude("Solarize", 0)), ramp)  # 256: none


def test_autoaugment_policy_table_is_torchvision_cifar10() -> None:
    tv = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    assert A.AutoAugmentCIFAR10().policy == tuple(tuple(p) for p in tv._policies) == C.CIFAR10_POLICY


def test_autoaugment_op_frequencies() -> None:
    aa = A.AutoAugmentCIFAR10()
    n = 20000
    entry = aa.sample(shape_only(n), gen("cpu"))
    names = [name for name, _ in aa.entry_ops()]
    for slot in range(2):
        got: dict[str, float] = {}
        for e in entry[:, slot].tolist():
            got[names[e]] = got.get(names[e], 0) + 1 / n
        expected: dict[str, float] = {}
        for sp in C.CIFAR10_POLICY:
            name, p, _ = sp[slot]
            expected[name] = expected.get(name, 0) + p / 25
            expected["Identity"] = expected.get("Identity", 0) + (1 - p) / 25
        for name in set(got) | set(expected):
            assert abs(got.get(name, 0) - expected.get(name, 0)) < 0.01, (slot, name)
    # the two sign entries (even / odd index) are equally likely
    signed = entry[entry != aa.identity_entry]
    assert abs((signed % 2).float().mean().item() - 0.5) < 0.02


@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_autoaugment_forward_equals_pil_ops_in_sequence(device: str, capturable: bool) -> None:
    """The whole policy: each sample's two sampled ops, applied by PIL, give the batched result,
    by the stage-by-stage CPU path and by the fixed-shape path a CUDA graph captures."""
    x = images(64).to(device).float() / 255
    aa = A.AutoAugmentCIFAR10()
    aa.capturable = capturable
    out = aa(x, gen(device, 1))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(out, aa(x, gen(device, 1)))
    assert not torch.equal(out, aa(x, gen(device, 2)))
    ops = aa.entry_ops()
    pil = C.CifarAutoAugment()
    imgs = _pil_images((x * 255).round().to(torch.uint8).cpu())
    for i, e in enumerate(aa.sample(x, gen(device, 1)).tolist()):
        for slot in range(2):
            imgs[i] = pil.apply_op(imgs[i], *ops[e[slot]]) if e[slot] != aa.identity_entry else imgs[i]
    diff = (out.cpu() * 255 - _tensor(imgs)).abs()
    assert diff.max() <= (0 if device == "cpu" else 1) and (diff > 0).float().mean() <= 0.005


def test_autoaugment_stage_by_stage_equals_every_stage_for_every_entry() -> None:
    """Running each sample through its op's stage only gives the pixels of running it through
    all three, for every entry of the policy (mixed in one batch)."""
    aa = A.AutoAugmentCIFAR10()
    entries, _ = aa.tables(torch.device("cpu"), 32, 32)
    n = len(entries.stage)
    x = (images(n, seed=5).float()).contiguous()
    chosen = entries.select(torch.randperm(n, generator=torch.Generator().manual_seed(0)))
    assert set(chosen.stage.tolist()) == {A.IDENTITY, A.RESAMPLING, A.LUT, A.BLEND}
    assert torch.equal(A.apply_entries(x, chosen, capturable=False),
                       A.apply_entries(x, chosen, capturable=True))


def test_a_graphed_step_makes_its_augmentation_capturable() -> None:
    from gpaco.data.batched_ops import make_capturable
    from gpaco.data.batched_views import BatchedCompose

    aa = A.AutoAugmentCIFAR10()
    make_capturable([BatchedCompose([aa])])
    assert aa.capturable


def test_autoaugment_identity_entry_is_exact() -> None:
    x = _aa_inputs().float()
    aa = A.AutoAugmentCIFAR10()
    entries, _ = aa.tables(x.device, 32, 32)
    assert torch.equal(A.apply_entries(x, entries.select(torch.full((len(x),), aa.identity_entry))), x)


def test_autoaugment_statistics_match_pil() -> None:
    x = images(600, seed=3)
    torch.manual_seed(0)
    pil = C.CifarAutoAugment()
    theirs = _tensor([pil(img) for img in _pil_images(x)])
    ours = A.AutoAugmentCIFAR10()(x.float() / 255, gen("cpu")) * 255
    d_ours = (ours - x.float()).abs().mean((1, 2, 3))
    d_theirs = (theirs - x.float()).abs().mean((1, 2, 3))
    assert _same_distribution(d_ours, d_theirs)
    assert abs((d_ours == 0).float().mean() - (d_theirs == 0).float().mean()) < 0.05
    grey = lambda t: (t == 128).all(1).float().mean((1, 2))  # noqa: E731 (fill share per image)
    assert _same_distribution(grey(ours), grey(theirs))
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", V.BATCHED_TRANSFORM_NAMES)
def test_build_batched_transform(device: str, name: str) -> None:
    x = images(16).to(device).permute(0, 2, 3, 1)  # NHWC uint8, as datasets store it
    t = V.build_batched_transform(name, image_size=32)
    out = t(x, gen(device))
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32 and out.device.type == device
    assert torch.isfinite(out).all()
    assert torch.equal(out, t(x, gen(device)))
    if name == "cifar_test":
        mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
        torch.testing.assert_close(out, (x.permute(0, 3, 1, 2).float() / 255 - mean) / std)
    else:
        assert not torch.equal(out, t(x, gen(device, 1)))
        same = x[:1].expand(8, -1, -1, -1)  # identical inputs get different augmentations
        views = t(same, gen(device))
        assert len({v.sum().item() for v in views}) > 4


def test_build_batched_transform_28px_and_errors() -> None:
    x = images(4, size=28)
    assert V.build_batched_transform("cifar_regular", image_size=28)(x, gen("cpu")).shape == (4, 3, 28, 28)
    with pytest.raises(UserError):
        V.build_batched_transform("imagenet_test")


def _same_distribution(d_ours: torch.Tensor, d_theirs: torch.Tensor, ratio_tol: float = 0.2) -> bool:
    """Means within 4 standard errors and spreads within `ratio_tol` (independent samples)."""
    se = math.sqrt(d_ours.var().item() / len(d_ours) + d_theirs.var().item() / len(d_theirs))
    mean_ok = abs(d_ours.mean().item() - d_theirs.mean().item()) < 4 * se + 1e-4
    return mean_ok and abs(d_ours.std().item() / d_theirs.std().item() - 1) < ratio_tol


@pytest.mark.parametrize("name", ["cifar_sim", "cifar_regular"])
def test_gpu_pipeline_statistics_match_cpu_pipeline(name: str) -> None:
    """Per-image change of mean and std: GPU pipeline vs the PIL pipeline on the same images."""
    x = images(300, seed=7)
    cpu = build_transform(name)
    torch.manual_seed(0)
    theirs = torch.stack([cpu(Image.fromarray(img.permute(1, 2, 0).numpy())) for img in x])
    ours = V.build_batched_transform(name)(x, gen("cpu"))
    plain = V.build_batched_transform("cifar_test")(x)
    for stat in (lambda t: t.mean((1, 2, 3)), lambda t: t.std((1, 2, 3))):
        assert _same_distribution(stat(ours) - stat(plain), stat(theirs) - stat(plain)), name


def test_cifar_test_view_resizes_as_the_per_sample_path_within_a_level() -> None:
    """28 px images at data.image_size=32: both paths resize first (PIL's antialiased bilinear
    against torch's), then normalise; the batched one used to keep 28 px."""
    x = images(8, size=28)
    batched = V.build_batched_transform("cifar_test", image_size=32)(x)
    per_sample = build_transform("cifar_test", image_size=32)
    ref = torch.stack([per_sample(Image.fromarray(img.permute(1, 2, 0).numpy())) for img in x])
    assert batched.shape == ref.shape == (8, 3, 32, 32)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    levels = ((batched - ref) * std * 255).abs()
    assert levels.max() <= 2.01 and levels.mean() < 0.3
    same = V.build_batched_transform("cifar_test", image_size=28)
    assert torch.equal(same(x), O.Normalize(CIFAR_MEAN, CIFAR_STD)(O.to_float_nchw(x)))
