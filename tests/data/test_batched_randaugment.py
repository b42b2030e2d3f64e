"""The batched RandAugment (gpaco.data.batched_randaugment) against timm's PIL RandAugment that the
per-sample `randcls` / `randclsstack` views run: every op at fixed parameters pixel for pixel
(up to float rounding of PIL's double-precision coordinates: at most 1 level on 0.5 % of the
pixels), and the random parameters by their distributions."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from gpaco.data import batched_randaugment as R
from gpaco.data.randaugment import _posterize
from gpaco.data.transforms import IMAGENET_MEAN

timm_aa = pytest.importorskip("timm.data.auto_augment")
pytestmark = pytest.mark.usefixtures("one_thread")

FILL = tuple(min(255, round(255 * v)) for v in IMAGENET_MEAN)


def photo(seed: int = 0, h: int = 36, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8))
    img = np.asarray(small.resize((w, h), Image.BICUBIC)).astype(int)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


def timm_op(img: np.ndarray, name: str, magnitude: float, negative: bool, resample: int) -> np.ndarray:
    op = timm_aa.AugmentOp(name, prob=1.0, magnitude=magnitude,
                           hparams={"translate_const": 100, "img_mean": FILL})
    if name == "Posterize":
        op.aug_fn = _posterize  # gpaco's: 0 bits is black
    op.kwargs["resample"] = resample
    draw = random.random
    random.random = lambda: 0.9 if negative else 0.1  # timm's _randomly_negate: > 0.5 negates
    try:
        return np.asarray(op(Image.fromarray(img))).astype(int)
    finally:
        random.random = draw


CASES = [(name, m, neg, rs) for name in R.OPS for m in (0.0, 2.4, 6.3, 9.7, 10.0)
         for neg in (False, True) for rs in (Image.BILINEAR, Image.BICUBIC)
         if name in R.GEOMETRIC or (not neg and rs == Image.BILINEAR)]


@pytest.mark.parametrize("name, magnitude, negative, resample", CASES)
def test_each_op_is_timms_within_rounding(name: str, magnitude: float, negative: bool,
                                          resample: int) -> None:
    img = photo(hash((name, magnitude)) % 1000)
    ref = timm_op(img, name, magnitude, negative, resample)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    level = torch.tensor([magnitude / 10 * (-1 if negative and name in R.GEOMETRIC else 1)])
    out = R.RandAugment(fill=FILL).layer(x, torch.tensor([R.OPS.index(name)]), level,
                                         torch.tensor([resample == Image.BICUBIC]))
    diff = np.abs(out[0].permute(1, 2, 0).numpy().astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.005, (diff.max(), (diff > 0).mean())


def test_a_batch_gives_each_sample_its_own_op() -> None:
    imgs = [photo(s) for s in range(len(R.OPS))]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float()
    ops = torch.arange(len(R.OPS))
    level = torch.full((len(R.OPS),), 0.83)
    out = R.RandAugment(fill=FILL).layer(x, ops, level, torch.zeros(len(R.OPS), dtype=torch.bool))
    for k, name in enumerate(R.OPS):
        ref = timm_op(imgs[k], name, 8.3, False, Image.BILINEAR)
        assert np.abs(out[k].permute(1, 2, 0).numpy() - ref).max() <= 1, name


def test_parameters_follow_timms_distributions() -> None:
    """rand-n2-m9-mstd0.5: ops uniform, p 0.5 each, magnitude N(9, 0.5) clipped to [0, 10],
    signs and filters with even odds; timm's own draws as the reference."""
    n = 40_000
    op, level, bicubic = R.RandAugment(n=2, m=9).sample(torch.empty(n, 3, 1, 1),
                                                         torch.Generator().manual_seed(0))
    applied = op >= 0
    assert abs(applied.float().mean().item() - 0.5) < 0.01
    counts = torch.bincount(op[applied], minlength=len(R.OPS)).float()
    assert (counts / counts.sum() - 1 / len(R.OPS)).abs().max() < 0.006
    rng = random.Random(0)
    theirs = torch.tensor([max(0.0, min(10.0, rng.gauss(9, 0.5))) for _ in range(n)])
    ours = level.abs().flatten() * 10
    assert abs(ours.mean() - theirs.mean()) < 0.01 and abs(ours.std() - theirs.std()) < 0.01
    geometric = R._is(op, R.GEOMETRIC)
    assert abs((level[geometric] < 0).float().mean().item() - 0.5) < 0.02
    assert (level[~geometric] >= 0).all()
    assert abs(bicubic[geometric].float().mean().item() - 0.5) < 0.02
    # m 10 clips half of the draws at 10: posterize keeps 4 bits then, else 3 (timm's int())
    _, top, _ = R.RandAugment(n=1, m=10).sample(torch.empty(n, 3, 1, 1), torch.Generator().manual_seed(1))
    assert abs((top.abs() == 1.0).float().mean().item() - 0.5) < 0.02


def test_forward_is_reproducible_and_keeps_unapplied_samples() -> None:
    x = torch.from_numpy(np.stack([photo(s) for s in range(12)])).permute(0, 3, 1, 2).float() / 255
    ra = R.RandAugment(n=2, m=10)
    out = ra(x, torch.Generator().manual_seed(5))
    assert torch.equal(out, ra(x, torch.Generator().manual_seed(5)))
    op, _, _ = ra.sample(x, torch.Generator().manual_seed(5))
    none = (op < 0).all(1)
    assert torch.equal(out[none], x[none])
    assert not torch.equal(out[~none], x[~none])
    assert out.min() >= 0 and out.max() <= 1


def test_the_cpu_affine_gives_the_capturable_forms_pixels() -> None:
    """The CPU form (each sample through its own filter along the axes it moves, in blocks)
    against the capturable form (both filters along both axes on every sample, all pixels at
    once), over rotations, shears and translations that leave the image, and blocks left over."""
    h, w = 70, 90  # 6,300 pixels: a whole block and a partial one
    assert R.AFFINE_BLOCK < h * w < 2 * R.AFFINE_BLOCK
    y = torch.from_numpy(np.stack([photo(s, h, w) for s in range(6)])).permute(0, 3, 1, 2).float()
    op = torch.tensor([R.OPS.index(n) for n in
                       ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "Rotate")])
    level = torch.tensor([0.9, -0.7, 0.4, 1.0, -0.6, -0.3])
    groups = R._cpu_groups(R.affine_matrices(op, level, h, w), torch.tensor([True] * 6))
    assert sorted(axes for _, _, axes in groups) == [(False, True), (True, False), (True, True)]
    matrix = R.affine_matrices(op, level, h, w)
    fill = torch.tensor(FILL, dtype=torch.float32)
    for bicubic in (torch.tensor([True, False, True, False, False, True]),
                    torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)):
        cpu = R.affine(y, matrix, bicubic, fill, capturable=False)
        assert torch.equal(cpu, R.affine(y, matrix, bicubic, fill, capturable=True))
        assert (cpu == fill.view(1, 3, 1, 1)).all(1).any()  # some pixels left the image


def test_the_cpu_form_of_a_whole_batch_is_the_capturable_forms() -> None:
    """RandAugment on 128 photos, every op drawn: the CPU form (each sample through its own
    stage, filter, LUT and degenerate only) gives the capturable form's values exactly."""
    x = torch.from_numpy(np.stack([photo(s) for s in range(128)])).permute(0, 3, 1, 2) / 255
    cpu, captured = R.RandAugment(n=2, m=10, fill=FILL), R.RandAugment(n=2, m=10, fill=FILL)
    captured.capturable = True
    op, _, _ = cpu.sample(x, torch.Generator().manual_seed(3))
    assert set(op.flatten().tolist()) >= set(range(len(R.OPS)))  # every op, some twice
    assert torch.equal(cpu(x, torch.Generator().manual_seed(3)),
                       captured(x, torch.Generator().manual_seed(3)))
