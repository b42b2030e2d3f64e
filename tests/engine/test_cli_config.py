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
            "train.device=cpu", "epochs=1", "warmup_epochs=0", "milestones=[]", "batch_size=8",
            "model.backbone=resnet8", "model.queue_size=16", "output.progress=none",
            "output.tensorboard=false", "output.plots=false", f"output.dir={tmp_path / 'run'}"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "training paco on image_folder (21 images, 3 classes)" in out
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["name"] == "run" and saved["data"]["batched_augment"] is False


@pytest.fixture
def trained(tmp_path, tiny_args):
    """A tiny finished run on the embedded data (its last.pt)."""
    run = tmp_path / "trained"
    assert main(["train", *tiny_args, "epochs=1", "warmup_epochs=0", "output.plots=false",
                 f"output.dir={run}"]) == 0
    return run / "last.pt"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpaco: error: "), err
    return err[0]


def test_eval_refuses_data_with_other_classes(trained, tmp_path, capsys):
    _folder(tmp_path / "data")  # 3 classes where the checkpoint knows 10
    assert main(["eval", "--checkpoint", str(trained), "data.dataset=image_folder",
                 f"data.root={tmp_path / 'data'}", "data.batched_augment=false"]) == 2
    assert "trained on 10 classes but the evaluation data has 3" in _one_error_line(capsys)


def test_eval_refuses_the_same_count_of_other_classes(trained, tmp_path, capsys):
    import torch

    from gpaco.data.cifar import CIFAR10_CLASSES

    ckpt = torch.load(trained, weights_only=True)
    ckpt["classes"] = CIFAR10_CLASSES  # a CIFAR-10 model evaluated on Fashion-MNIST
    torch.save(ckpt, tmp_path / "cifar.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "cifar.pt")]) == 2
    assert "class 0 is 'airplane' but the evaluation data's is 'T-shirt/top'" in \
        _one_error_line(capsys)


def test_eval_without_training_counts_leaves_the_groups_unknown(trained, tmp_path, capsys):
    import torch

    ckpt = torch.load(trained, weights_only=True)
    del ckpt["class_counts"]
    torch.save(ckpt, tmp_path / "nocounts.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "nocounts.pt")]) == 0
    out = capsys.readouterr().out
    assert "many – | medium – | few –" in out or "many - | medium - | few -" in out, out


def test_load_model_predicts_in_three_lines(trained):
    import torch
    from PIL import Image

    import gpaco
    from gpaco.data.embedded import EmbeddedFashionMNISTLT

    m = gpaco.load_model(str(trained))
    image = Image.fromarray(EmbeddedFashionMNISTLT(train=False).data[0])
    with torch.no_grad():
        logits = m.model(m.transform(image).unsqueeze(0))
    assert not m.model.training and logits.shape == (1, 10)
    assert m.classes[int(logits.argmax())] in EmbeddedFashionMNISTLT(train=False).classes


@pytest.mark.parametrize("overrides,message", [
    (["data.randaug_n=5"], "data.randaug_n=5 (set by the command line) has no effect here"),
    (["data.randaug_m=3", "data.batched_augment=false"], "acts only with RandAugment views"),
    (["data.workers=4"], "data.workers=4 (set by the command line) has no effect here"),
    (["data.dataset=image_folder", "data.root=/x", "data.subset_seed=3"],
     "acts only with a long-tailed subset (data.imb_factor)"),
    (["data.dataset=image_folder", "data.root=/x", "data.imb_type=step"],
     "acts only with a long-tailed subset"),
])
def test_keys_that_would_be_ignored_are_refused(overrides, message, capsys):
    assert main(["config", *overrides]) == 2
    assert message in _one_error_line(capsys)


def test_ignored_keys_set_for_another_setting_are_dropped_and_defaults_pass(capsys):
    # the CIFAR recipe's loader workers belong to its DataLoader: batched augmentation drops them
    assert main(["config", "--recipe", "cifar100-lt-paco", "data.batched_augment=true"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["workers"] == "auto"
    # what `gpaco config` prints (defaults written out) trains as it is
    assert main(["config", "data.randaug_n=2", "data.workers=0"]) == 0
