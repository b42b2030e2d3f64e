"""A run, composed: its config resolved against the task table (gpaco.tasks), and the trainer
or an evaluation handed the run's task. The command line and a user's own scripts start here:

    from gpaco import run
    cfg = run.load_config("cifar10-lt-paco", overrides=["epochs=5"])
    run.train(cfg, Path("runs/mine"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpaco import config, recipes, tasks
from gpaco.config import Config, as_flat, dump, to_dict
from gpaco.recipes import list_recipes
from gpaco.errors import UserError
from gpaco.train import trainer
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.weights.load import weights_file

__all__ = ["Config", "absolute_paths", "as_flat", "build_run", "dump", "evaluate_checkpoint",
           "evaluate_run_checkpoint",
           "from_dict", "list_recipes", "load_config", "load_run_checkpoint", "load_saved",
           "parse_overrides", "resolve", "to_dict", "train"]


def load_config(recipe: str | None = None, config_file: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults <- recipe or YAML file (with its `base:` chain) <- `key=value` overrides.

    With neither a recipe nor a file, the run starts from the `default` recipe, except when the
    overrides choose a dataset (`data.dataset=...`): then from the section defaults, so that the
    default recipe's settings for its embedded data never reach the user's own.
    """
    if recipe and config_file:
        raise UserError("give --recipe or --config, not both")
    catalogue = tasks.catalogue()
    override_layer = config.parse_overrides(list(overrides), catalogue)
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise UserError(f"config file not found: {config_file}")
        layers = recipes.load_layers(path.read_text(), str(path))
    elif recipe or "data.dataset" not in override_layer:
        name = recipe or "default"
        layers = recipes.load_layers(recipes.recipe_text(name), f"recipe {name}")
    else:
        layers = []
    return config.resolve([*layers, ("the command line", override_layer)], catalogue)


def from_dict(data: dict[str, Any], origin: str = "a saved config",
              overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A saved config (a checkpoint's, a run's config.yaml), with overrides."""
    return config.from_dict(data, origin, overrides, catalogue=tasks.catalogue())


def load_saved(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A run's saved config.yaml, with overrides."""
    return config.load_saved(path, overrides, catalogue=tasks.catalogue())


def resolve(layers: list[tuple[str, dict[str, Any]]], saved: int = -1) -> Config:
    """The typed config of (origin, layer) pairs in order (gpaco.config.resolve)."""
    return config.resolve(layers, tasks.catalogue(), saved)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`key=value` items as a flat {dotted path: value} layer."""
    return config.parse_overrides(overrides, tasks.catalogue())


_PATHS = ("data.root", "data.train_split", "data.val_split", "data.test_split", "output.dir")


def absolute_paths(cfg: Config) -> None:
    """Make the config's paths absolute, so a saved run resumes from any working directory.
    Split folders of a folder-layout dataset stay relative to data.root (`val` means root/val)."""
    folders = getattr(tasks.task_of(cfg).datasets[cfg.data.dataset], "splits_are_folders", False)
    for path in _PATHS:
        section, key = path.split(".")
        value = getattr(getattr(cfg, section), key)
        if key.endswith("_split") and folders:
            continue
        if value is not None:
            setattr(getattr(cfg, section), key, str(Path(value).expanduser().resolve()))
    if isinstance(cfg.model.pretrained, str) and weights_file(cfg.model.pretrained):
        cfg.model.pretrained = str(Path(cfg.model.pretrained).expanduser().resolve())


def train(cfg: Config, folder: Path, resume: bool = False,
          overwrite: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in `folder` (gpaco.train.trainer.train with its task)."""
    return trainer.train(cfg, folder, tasks.task_of(cfg), resume=resume, overwrite=overwrite)


def load_run_checkpoint(path: str, overrides: list[str] = ()) -> tuple[dict[str, Any], Config]:
    """A checkpoint written by `gpaco train` and its run config (`overrides` apply)."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("config"), dict):
        raise UserError(f"{path} holds no run config (not a checkpoint written by gpaco "
                        "train); for one of the authors' files add --recipe NAME")
    cfg = from_dict(ckpt["config"], f"the config of {path}", overrides)
    cfg.model.pretrained = False  # the checkpoint brings every weight
    return ckpt, cfg


def evaluate_checkpoint(path: str, split: str | None = None, overrides: list[str] = ()) -> Any:
    """The result of a run's checkpoint on `split` of its data (None: the task's default),
    as its task reports it."""
    ckpt, cfg = load_run_checkpoint(path, overrides)
    return tasks.task_of(cfg).evaluate_file(ckpt, cfg, split, path)


def evaluate_run_checkpoint(path: str, split: str | None = None,
                            overrides: list[str] = ()) -> str:
    """`gpaco eval --checkpoint RUN/last.pt`: the line it prints."""
    ckpt, cfg = load_run_checkpoint(path, overrides)
    task = tasks.task_of(cfg)
    return task.file_line(split, task.evaluate_file(ckpt, cfg, split, path))


def build_run(cfg: Config, folder: Path) -> trainer.Run:
    """The objects of a run (model, data, optimiser...) built by its task, not yet trained."""
    return trainer.Run(cfg, folder, tasks.task_of(cfg))
