"""The task seam: one table of tasks, the config's checks against the chosen task, and the
engine's runner per task."""

from __future__ import annotations

import pytest

from gpaco import run as C
from gpaco.tasks import TASKS as RUNNERS
from gpaco.errors import UserError
from gpaco.tasks import TASKS

SEG = ["task=segmentation", "data.dataset=seg_demo", "method=gpaco"]


def test_every_task_has_an_engine_runner() -> None:
    assert set(RUNNERS) == set(TASKS) == {"classification", "segmentation"}


def test_a_segmentation_key_on_a_classification_run_names_the_task() -> None:
    for key in ("loss.num_samples=16", "inference.flip=true", "model.arch=upernet",
                "data.crop_size=[8,8]", "data.annotations=annotations_ori_0-150"):
        with pytest.raises(UserError, match=r"does not apply to task=classification; it is used "
                                            r"by task=segmentation"):
            C.load_config(overrides=[key])


def test_a_classification_key_on_a_segmentation_run_names_the_task() -> None:
    for key in ("data.views=[cifar_test]", "model.queue_size=64", "train.cuda_graph=true",
                "data.imb_factor=0.1", "loss.beta=1.0"):
        with pytest.raises(UserError, match=r"does not apply to task=segmentation; it is used "
                                            r"by task=classification"):
            C.load_config(overrides=[*SEG, key])


def test_segmentation_choices_are_checked_against_the_segmentation_tables() -> None:
    with pytest.raises(UserError, match="method must be one of ce, gpaco for task=segmentation"):
        C.load_config(overrides=["task=segmentation", "data.dataset=seg_demo", "method=paco"])
    with pytest.raises(UserError, match="data.dataset=ade20k is a segmentation dataset; set "
                                        "task=segmentation"):
        C.load_config(overrides=["data.dataset=ade20k"])
    with pytest.raises(UserError, match="task must be one of classification, segmentation"):
        C.load_config(overrides=["task=detection"])


def test_segmentation_defaults_come_from_the_task_and_the_method() -> None:
    cfg = C.load_config(overrides=SEG)
    assert (cfg.loss.alpha, cfg.loss.temperature, cfg.loss.num_samples) == (0.01, 0.07, 8192)
    assert (cfg.loss.aux_weight, cfg.loss.ce_average, cfg.model.dim) == (0.4, "all", 128)
    assert (cfg.inference.mode, cfg.inference.ratios, cfg.data.cat_max_ratio) == ("whole", [1.0], 0.75)
    assert cfg.loss.beta is None and cfg.model.queue_size is None  # classification's stay unset


def test_the_ce_baseline_drops_the_recipes_gpaco_keys() -> None:
    cfg = C.load_config("seg-default", overrides=["method=ce"])
    assert cfg.method == "ce" and cfg.loss.alpha is None and cfg.loss.num_samples is None
    with pytest.raises(UserError, match="loss.alpha .* does not apply to method=ce"):
        C.load_config("seg-default", overrides=["method=ce", "loss.alpha=0.1"])


@pytest.mark.parametrize("override, message", [
    ("inference.mode=slide", "needs inference.crop and inference.stride"),
    ("data.crop_size=[64]", "data.crop_size must be two positive numbers"),
    ("loss.num_samples=0", "loss.num_samples must be -1"),
    ("model.output_stride=4", "model.output_stride must be 8 or 16"),
    ("inference.ratios=[]", "inference.ratios must list positive scales"),
])
def test_bad_segmentation_values_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        C.load_config("seg-default", overrides=[override])


def test_every_segmentation_recipe_resolves_with_its_ce_twin() -> None:
    names = [n for n in C.list_recipes() if n.startswith("seg-")]
    gpaco = [n for n in names if n.endswith("-gpaco")]
    assert len(gpaco) == 10  # the paper's table: 3 ADE20K, 3 Cityscapes, 2 COCO-Stuff, 2 Context
    for name in gpaco:
        g, c = C.load_config(name), C.load_config(name.removesuffix("-gpaco") + "-ce")
        assert g.task == c.task == "segmentation" and (g.method, c.method) == ("gpaco", "ce")
        same = ("data", "model", "optim", "schedule", "inference")
        assert all(getattr(g, s) == getattr(c, s) for s in same if s != "model")
        assert g.model.backbone == c.model.backbone and g.model.pretrained == c.model.pretrained
        assert g.origin.paper and g.loss.num_samples == 8192 and g.loss.temperature == 0.07
