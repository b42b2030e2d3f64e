"""Iteration-based schedules: schedule.iterations / warmup_iterations (mmseg's IterBasedRunner)."""

from __future__ import annotations

import pytest

from gpaco.cli import main
from gpaco import run as C
from gpaco.train import iterations as I
from gpaco.train import run_dir as rd
from gpaco.config import ScheduleConfig
from gpaco.train.schedule import lr_at
from gpaco.errors import UserError

POLY = ScheduleConfig("poly", epochs=400, warmup_epochs=0, power=1.0, min_lr=0.0,
                      iterations=160_000, warmup_iterations=1_500)


def test_an_iteration_run_walks_ceil_epochs_and_cuts_the_last_one() -> None:
    assert I.epochs_for(POLY, 1_263) == 127
    assert I.steps_in_epoch(POLY, 0, 1_263) == 1_263
    assert I.steps_in_epoch(POLY, 126, 1_263) == 160_000 - 126 * 1_263 == 862
    assert sum(I.steps_in_epoch(POLY, e, 1_263) for e in range(127)) == 160_000


@pytest.mark.parametrize("step", [0, 750, 1_500, 80_000, 159_999])
def test_the_lr_follows_the_step_count_not_whole_epochs(step: int) -> None:
    """mmcv's poly with linear warm-up over 1,500 iterations, power 1, from 6e-5."""
    steps = 1_263
    sched = I.lr_schedule(POLY, steps)
    epoch = step // steps + (step % steps) / steps
    regular = 6e-5 * (1 - step / 160_000)
    want = regular * step / 1_500 if step < 1_500 else regular
    assert lr_at(epoch, 6e-5, sched) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_recipes_state_the_authors_iterations() -> None:
    want = {"seg-ade20k-upernet-swin-t-gpaco": (160_000, 1_500),
            "seg-ade20k-upernet-swin-l-gpaco-lovasz": (160_000, 1_500),
            "seg-cityscapes-deeplabv3plus-r18-ce": (80_000, 0),
            "seg-coco-stuff10k-deeplabv3plus-r101-gpaco": (40_000, 0),
            "seg-pascal-context59-deeplabv3plus-r50-ce": (40_000, 0)}
    for name, (total, warm) in want.items():
        s = C.load_config(name).schedule
        assert (s.iterations, s.warmup_iterations) == (total, warm), name


def test_bad_iteration_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="warmup_iterations"):
        C.load_config("seg-default", overrides=["schedule.iterations=10",
                                                "schedule.warmup_iterations=10"])
    with pytest.raises(UserError, match="schedule.iterations"):
        C.load_config("default", overrides=["schedule.iterations=10"])  # a step schedule


def test_a_training_run_stops_after_the_stated_iterations(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", "schedule.iterations=5",
                 "train.max_steps_per_epoch=2", "train.batch_size=4", "train.device=cpu",
                 "output.progress=none", "output.tensorboard=false", "output.plots=false",
                 "train.eval_every=10", f"output.dir={run}"]) == 0
    records = rd.read_metrics(run)
    assert [r["steps"] for r in records] == [2, 2, 1]
    assert "for 3 epochs" in capsys.readouterr().out

