"""Per-pixel GPaCo and the segmentation total loss against brute-force float64 loops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpaco.errors import UserError
from gpaco.losses.pixel_paco import PixelPaCoLoss, downsample_labels, pixel_paco_loss, sample_pixels
from gpaco.losses.segmentation import SegmentationLoss, pixel_cross_entropy
from loss_reference import grads, ref_cross_entropy, ref_paco

C = 4
IGNORE = 255


def _maps(n: int = 2, dim: int = 6, h: int = 4, w: int = 5, scale: int = 2, seed: int = 0):
    """Leaf float64 embeddings (N, D, h, w), center logits (N, C, h, w) and labels (N, sH, sW)
    with some ignored pixels."""
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, h, w, generator=gen, dtype=torch.float64).requires_grad_()
    logits = (2 * torch.randn(n, C, h, w, generator=gen, dtype=torch.float64)).requires_grad_()
    labels = torch.randint(0, C, (n, scale * h, scale * w), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.2] = IGNORE
    return emb, logits, labels


def _brute_force(emb, logits, labels, *, alpha, temperature, num_samples, seed):
    """Explicit per-pixel loop: nearest label by index arithmetic, void -> C, then ref_paco."""
    n_img, _, h, w = emb.shape
    big_h, big_w = labels.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for n in range(n_img):
        feats, pixel_labels, pixel_logits = [], [], []
        for i in range(h):
            for j in range(w):
                y = int(labels[n, (i * big_h) // h, (j * big_w) // w])
                pixel_labels.append(y if 0 <= y < C else C)
                feats.append(emb[n, :, i, j] / emb[n, :, i, j].norm())
                pixel_logits.append(logits[n, :, i, j])
        order = torch.randperm(h * w, generator=gen)
        keep = order if num_samples < 0 else order[:num_samples]
        keep = keep.tolist()
        losses.append(ref_paco(
            torch.stack([feats[k] for k in keep]),
            torch.tensor([pixel_labels[k] for k in keep]),
            torch.stack([pixel_logits[k] for k in keep]),
            alpha=alpha, temperature=temperature, ignore_index=C,
        ))
    return sum(losses) / n_img


@pytest.mark.parametrize("num_samples", [7, 20, -1])
@pytest.mark.parametrize("alpha,temperature", [(0.01, 0.07), (0.5, 0.2)])
def test_matches_brute_force(num_samples: int, alpha: float, temperature: float) -> None:
    emb, logits, labels = _maps(seed=num_samples + 10)
    kw = dict(alpha=alpha, temperature=temperature, num_samples=num_samples)
    loss = pixel_paco_loss(emb, logits, labels, generator=torch.Generator().manual_seed(3), **kw)
    expected = _brute_force(emb, logits, labels, seed=3, **kw)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    for got, want in zip(grads(loss, emb, logits), grads(expected, emb, logits)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_sampling_is_reproducible_with_a_generator() -> None:
    emb, logits, labels = _maps()
    def loss(seed: int) -> torch.Tensor:
        return pixel_paco_loss(emb, logits, labels, alpha=0.1, num_samples=6,
                               generator=torch.Generator().manual_seed(seed))
    assert torch.equal(loss(1), loss(1))
    assert not torch.equal(loss(1), loss(2))
    criterion_a, criterion_b = (PixelPaCoLoss(C, alpha=0.1, num_samples=6, seed=5) for _ in "ab")
    first = [criterion_a(emb, logits, labels) for _ in range(2)]
    assert torch.equal(first[0], criterion_b(emb, logits, labels))
    assert not torch.equal(first[0], first[1])  # the stream moves on between steps


def test_sample_pixels_draws_distinct_indices() -> None:
    gen = torch.Generator().manual_seed(0)
    idx = sample_pixels(100, 30, gen)
    assert idx.shape == (30,) and idx.unique().numel() == 30 and int(idx.max()) < 100
    assert sorted(sample_pixels(10, 8192, gen).tolist()) == list(range(10))
    assert sorted(sample_pixels(10, -1, gen).tolist()) == list(range(10))


def test_void_pixels_are_contrast_columns_not_anchors() -> None:
    emb, logits, labels = _maps(n=1, seed=4)
    labels[:] = 1
    labels[0, :4] = IGNORE  # top rows void after downsampling
    full = pixel_paco_loss(emb, logits, labels, alpha=0.3, num_samples=-1)
    small = downsample_labels(labels, (4, 5))[0].flatten()
    valid = small != IGNORE
    feats = F.normalize(emb[0].flatten(1).T, dim=1)
    flat_logits = logits[0].flatten(1).T
    # Dropping the void pixels changes the normaliser of the valid anchors...
    without = ref_paco(feats[valid], small[valid], flat_logits[valid], alpha=0.3, ignore_index=C)
    assert not torch.allclose(full, without)
    # ...and keeping them as label-C columns reproduces the loss exactly.
    labels_c = torch.where(valid, small, torch.full_like(small, C))
    kept = ref_paco(feats, labels_c, flat_logits, alpha=0.3, ignore_index=C)
    torch.testing.assert_close(full, kept, rtol=1e-6, atol=1e-12)


def test_all_void_image_gives_zero_not_nan() -> None:
    emb, logits, labels = _maps(n=1)
    labels[:] = IGNORE
    loss = pixel_paco_loss(emb, logits, labels, alpha=0.1, num_samples=-1)
    assert loss.item() == 0.0


def test_downsample_labels_is_nearest_floor_rule() -> None:
    labels = torch.arange(8 * 10).reshape(1, 8, 10)
    small = downsample_labels(labels, (4, 5))
    assert torch.equal(small, labels[:, ::2, ::2])


def test_bad_parameters_are_user_errors() -> None:
    for kwargs in (dict(alpha=-1.0), dict(alpha=0.1, temperature=0.0),
                   dict(alpha=0.1, num_samples=0)):
        with pytest.raises(UserError):
            PixelPaCoLoss(C, **kwargs)


def _ref_pixel_ce(logits, labels, average):
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    flat = up.permute(0, 2, 3, 1).reshape(-1, C)
    flat_labels = labels.flatten()
    valid_mean = ref_cross_entropy(flat, flat_labels, ignore_index=IGNORE)
    if average == "valid":
        return valid_mean
    return valid_mean * (flat_labels != IGNORE).sum() / flat_labels.numel()


@pytest.mark.parametrize("average", ["all", "valid"])
def test_pixel_cross_entropy_matches_loop(average: str) -> None:
    _, logits, labels = _maps(n=1, h=3, w=3)
    got = pixel_cross_entropy(logits, labels, average=average)
    torch.testing.assert_close(got, _ref_pixel_ce(logits, labels, average), rtol=1e-9, atol=1e-12)


def test_total_is_ce_plus_weighted_aux_plus_paco() -> None:
    emb, logits, labels = _maps(n=1, h=3, w=3)
    aux = torch.randn_like(logits)
    paco = PixelPaCoLoss(C, alpha=0.05, num_samples=-1)
    criterion = SegmentationLoss(paco, aux_weight=0.4)
    total = criterion(logits, labels, aux_logits=aux, embeddings=emb)
    expected = (_ref_pixel_ce(logits, labels, "all") + 0.4 * _ref_pixel_ce(aux, labels, "all")
                + _brute_force(emb, logits, labels, alpha=0.05, temperature=0.07,
                               num_samples=-1, seed=0))
    torch.testing.assert_close(total, expected, rtol=1e-6, atol=1e-12)
    assert set(criterion.parts(logits, labels, aux, emb)) == {"ce", "aux", "paco"}
    baseline = SegmentationLoss(None)(logits, labels, aux_logits=aux)
    torch.testing.assert_close(baseline, expected - criterion.parts(logits, labels, aux, emb)["paco"])
    with pytest.raises(UserError):
        SegmentationLoss(None, ce_average="mean")


def test_the_sampler_state_travels_in_the_state_dict() -> None:
    """A resumed run draws the same pixel subsets: the generator is part of the state_dict."""
    torch.manual_seed(0)
    e, s = torch.randn(2, 8, 6, 6), torch.randn(2, 4, 6, 6)
    y = torch.randint(0, 4, (2, 24, 24))
    a = PixelPaCoLoss(4, alpha=0.05, num_samples=10, seed=3)
    a(e, s, y)  # advance the stream
    b = PixelPaCoLoss(4, alpha=0.05, num_samples=10, seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(e, s, y), b(e, s, y))
    assert not torch.equal(a(e, s, y), PixelPaCoLoss(4, alpha=0.05, num_samples=10, seed=3)(e, s, y))
