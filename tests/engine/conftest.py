import pytest
import yaml

from gpaco import run as C
from gpaco.cli import main

# A run small enough for a CPU test: the embedded data, a few steps an epoch.
TINY = ["train.batch_size=32", "train.max_steps_per_epoch=3", "train.eval_batch_size=500",
        "train.log_every=1", "output.progress=none", "output.tensorboard=false",
        "model.queue_size=64", "model.backbone=resnet20", "train.device=cpu"]


@pytest.fixture
def cli_error(capsys):
    """`cli_error(*argv)`: `gpaco argv` must stop with status 2 and one stderr line,
    `gpaco: error: ...` (a user error, no traceback); returns that line."""
    def run(*argv: str) -> str:
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("gpaco: error: "), err
        return err.rstrip("\n")
    return run


@pytest.fixture
def tiny_args():
    return list(TINY)


@pytest.fixture(scope="module")
def tiny_args_for_module():
    """TINY for module-scoped fixtures (one run shared by a module's tests)."""
    return tuple(TINY)


def tiny_config_file(folder, recipe: str = "default"):
    """A config file `base: recipe` + TINY: a layer below the command line, so that an override
    `method=ce` drops TINY's queue size as it would a recipe's."""
    path = folder / f"tiny-{recipe}.yaml"
    path.write_text(yaml.safe_dump({"base": recipe, **C.parse_overrides(TINY)}))
    return path


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str, recipe: str = "default"):
        return C.load_config(config_file=str(tiny_config_file(tmp_path, recipe)),
                             overrides=[f"output.dir={tmp_path / 'run'}", *overrides])

    return make
