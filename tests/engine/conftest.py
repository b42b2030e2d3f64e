import pytest

from gpaco.engine import config as C

# A run small enough for a CPU test: the embedded data, a few steps an epoch.
TINY = ["train.batch_size=32", "train.max_steps_per_epoch=3", "train.eval_batch_size=500",
        "train.log_every=1", "output.progress=none", "output.tensorboard=false",
        "model.queue_size=64", "model.backbone=resnet20", "train.device=cpu"]


@pytest.fixture
def tiny_args():
    return list(TINY)


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str, recipe: str = "default"):
        cfg = C.load_config(recipe, overrides=TINY + [f"output.dir={tmp_path / 'run'}", *overrides])
        return cfg

    return make
