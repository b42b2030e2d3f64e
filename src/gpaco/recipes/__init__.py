"""The shipped recipes (one YAML file per paper setting, beside this file) and how a recipe or a
config file becomes the layers of a config: the root of its `base:` chain first."""

from __future__ import annotations

from importlib import resources

from gpaco.config.layers import Layer, read_yaml
from gpaco.errors import UserError


def list_recipes() -> list[str]:
    """Names of the YAML recipes shipped in `gpaco/recipes`."""
    folder = resources.files("gpaco") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_text(name: str) -> str:
    path = resources.files("gpaco") / "recipes" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(list_recipes())}")
    return path.read_text()


def load_layers(text: str, origin: str, seen: tuple[str, ...] = ()) -> list[tuple[str, Layer]]:
    """(origin, layer) from the root of the `base:` chain down to this one."""
    layer = read_yaml(text, origin)
    base = layer.pop("base", None)
    if base is None:
        return [(origin, layer)]
    if base in seen:
        raise UserError(f"{origin}: recipe inheritance loops through {base!r}")
    return load_layers(recipe_text(base), f"recipe {base}", seen + (base,)) + [(origin, layer)]
