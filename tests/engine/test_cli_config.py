"""`gpaco config`, refused keys through the command line, and a run on a user's own folder."""

import numpy as np
import pytest
import yaml
from PIL import Image

from gpaco.cli import main


def test_config_prints_the_resolved_recipe(capsys):
    assert main(["config", "--recipe", "cifar100-lt-paco", "lr=0.1", "method=ce"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["method"] == "ce" and cfg["optim"]["lr"] == 0.1
    assert cfg["data"]["imb_factor"] == 0.01 and cfg["data"]["subset_seed"] == 0
    # the recipe's PaCo options are gone for CE; CE's own default is shown
    assert cfg["loss"]["alpha"] is None and cfg["loss"]["label_smoothing"] == 0.0
    assert cfg["model"]["queue_size"] is None


@pytest.mark.parametrize("args, message", [
    (["train", "method=paco", "loss.tau=3"], "loss.tau (set by the command line) does not apply"),
    (["config", "method=gpaco", "model.momentum=0.5"], "model.momentum"),
    (["config", "data.imb_factor=0.1"], "data.imb_factor"),
])
def test_a_key_that_does_not_apply_is_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpaco: error: ") and message in err[0]


def _folder(root, per_class=(12, 6, 3)):
    rng = np.random.default_rng(0)
    for split, counts in (("train", per_class), ("val", (4, 4, 4))):
        for c, n in enumerate(counts):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                    root / split / f"c{c}" / f"{i}.png")


def test_image_folder_without_a_recipe_trains_on_the_cpu_loader(tmp_path, capsys):
    # The default recipe's batched augmentation (and its embedded-data settings) must not
    # reach a user's own folder: this ran into "the GPU loader needs an in-memory dataset".
    _folder(tmp_path / "data")
    args = ["train", "data.dataset=image_folder", f"data.root={tmp_path / 'data'}",
            "train.device=cpu", "epochs=1", "warmup_epochs=0", "batch_size=8",
            "model.backbone=resnet8", "model.queue_size=16", "output.progress=none",
            "output.tensorboard=false", "output.plots=false", f"output.dir={tmp_path / 'run'}"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "training paco on image_folder (21 images, 3 classes)" in out
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["name"] == "run" and saved["data"]["batched_augment"] is False
