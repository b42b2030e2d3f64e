import math

import pytest

from gpaco.config import ScheduleConfig
import torch

from gpaco.train.schedule import ScheduledStep, lr_at

STEP = ScheduleConfig("step", epochs=400, warmup_epochs=10, milestones=[320, 360], decay=0.1)
COS = ScheduleConfig("cosine", epochs=400, warmup_epochs=10)


@pytest.mark.parametrize("epoch,factor", [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (320, 1.0),
                                          (321, 0.1), (360, 0.1), (361, 0.01), (399, 0.01)])
def test_cifar_step_schedule(epoch, factor):
    assert lr_at(epoch, 0.05, STEP) == pytest.approx(0.05 * factor)


def test_cosine_schedule_matches_released_checkpoint_lr():
    # A user found lr 0.00000065 in the released 400-epoch R50 ImageNet-LT checkpoint (lr 0.04).
    assert lr_at(399, 0.04, COS) == pytest.approx(6.5e-7, rel=0.05)
    assert lr_at(9, 0.04, COS) == pytest.approx(0.04)
    expected = 0.04 * 0.5 * (1 + math.cos(math.pi * 191 / 391))
    assert lr_at(200, 0.04, COS) == pytest.approx(expected)


# -- per-step schedules ------------------------------------------------------------------------
MAE_B = ScheduleConfig("warmup_cosine", epochs=100, warmup_epochs=5, min_lr=1e-6)


def test_warmup_cosine_hand_values_at_fractional_epochs():
    """MAE's ViT-B: peak 2e-3 after 5 warm-up epochs from 0, half cosine to 1e-6 at epoch 100."""
    assert lr_at(0.0, 2e-3, MAE_B) == 0.0
    assert lr_at(2.5, 2e-3, MAE_B) == pytest.approx(1e-3)  # half-way up the warm-up
    assert lr_at(0.001, 2e-3, MAE_B) == pytest.approx(2e-3 * 0.001 / 5)  # moves within an epoch
    assert lr_at(5.0, 2e-3, MAE_B) == pytest.approx(2e-3)
    assert lr_at(52.5, 2e-3, MAE_B) == pytest.approx((2e-3 + 1e-6) / 2)  # mid-cosine
    want = 1e-6 + (2e-3 - 1e-6) * 0.5 * (1 - 2 ** -0.5)  # 3/4 of the cosine
    assert lr_at(76.25, 2e-3, MAE_B) == pytest.approx(want)
    assert lr_at(100.0, 2e-3, MAE_B) == pytest.approx(1e-6)


def test_poly_follows_mmcv_with_linear_warmup():
    """mmseg's UPerNet schedule scaled to 10 epochs: (lr - min) (1 - e/E)^0.9 + min, x e/W."""
    poly = ScheduleConfig("poly", epochs=10, warmup_epochs=1, min_lr=1e-4, power=0.9)
    regular = lambda e: (0.01 - 1e-4) * (1 - e / 10) ** 0.9 + 1e-4  # noqa: E731
    assert lr_at(0.0, 0.01, poly) == 0.0
    assert lr_at(0.5, 0.01, poly) == pytest.approx(regular(0.5) * 0.5)
    assert lr_at(1.0, 0.01, poly) == pytest.approx(regular(1.0))
    assert lr_at(7.3, 0.01, poly) == pytest.approx(regular(7.3))
    assert lr_at(10.0, 0.01, poly) == pytest.approx(1e-4)
    no_warmup = ScheduleConfig("poly", epochs=10, warmup_epochs=0, min_lr=0.0, power=1.0)
    assert lr_at(2.5, 0.01, no_warmup) == pytest.approx(0.0075)  # power 1: linear decay


def test_epoch_schedules_ignore_the_fraction():
    assert lr_at(320.99, 0.05, STEP) == lr_at(320, 0.05, STEP)
    assert lr_at(200.5, 0.04, COS) == lr_at(200, 0.04, COS)


def test_scheduled_step_sets_each_groups_lr_before_every_step():
    """Two groups (lr_scale 1 and 0.5), 4 steps per epoch: the inner step sees the lr of
    epoch + i/4, scaled per group, and resuming at an epoch continues the same sequence."""
    w = torch.nn.Parameter(torch.zeros(1))
    v = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [w], "lr_scale": 1.0}, {"params": [v], "lr_scale": 0.5}])
    seen = []

    class Inner:
        lays_out_inputs = False

        def __call__(self, views, labels):
            seen.append([g["lr"] for g in opt.param_groups])
            return torch.zeros(())

    step = ScheduledStep(Inner(), opt, 2e-3, MAE_B)
    for epoch in (0, 7):
        assert step.begin_epoch(epoch, 4) == lr_at(epoch, 2e-3, MAE_B)
        for _ in range(4):
            step([torch.zeros(1)], torch.zeros(1))
    fractions = [e + i / 4 for e in (0, 7) for i in range(4)]
    assert seen == [pytest.approx([lr_at(f, 2e-3, MAE_B), 0.5 * lr_at(f, 2e-3, MAE_B)])
                    for f in fractions]
