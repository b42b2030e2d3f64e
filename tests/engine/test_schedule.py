import math

import pytest

from gpaco.engine.config import ScheduleConfig
from gpaco.engine.schedule import lr_at

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
