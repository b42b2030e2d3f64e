"""The resolution: layers -> a typed config whose sections hold the shared keys and the keys of
the run's choices (its task, method, dataset, optimiser, schedule), nothing else.

A key some choice owns is refused where the run's choice does not use it, naming the key and
what uses it, unless it was set by a layer *before* the one that made the choice (a recipe's
PaCo `loss.alpha` when the command line says `method=ce`): such keys belonged to the earlier
choice and are dropped. An owned key left unset takes its owner's default, which the resolved
config then shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from gpaco.errors import UserError

from .coerce import coerce
from .layers import Layer, flatten
from .options import Catalogue, Entry, Option, TaskEntry
from .section import Section
from .sections import SECTIONS, Config

REFERENCE_BATCH = 256  # MAE's rule: lr = blr * effective batch / 256


def shared_types() -> dict[str, Any]:
    """Dotted path -> type hint of every key every run has."""
    out: dict[str, Any] = {}
    for key, kind in Config.shared_types().items():
        if key in SECTIONS:
            out.update({f"{key}.{k}": v for k, v in SECTIONS[key].shared_types().items()})
        else:
            out[key] = kind
    return out


def shared_defaults() -> dict[str, Any]:
    return as_flat(Config())


def known_keys(catalogue: Catalogue) -> dict[str, Any]:
    """Every key a layer may set: the shared ones and every key some choice owns."""
    return {**shared_types(), **{k: o.kind for k, o in catalogue.owned_keys().items()}}


def resolve(layers: list[tuple[str, Layer]], catalogue: Catalogue, saved: int = -1) -> Config:
    """The typed config of `layers` ((origin, nested or flat dotted-key mapping), in order).

    Layers up to index `saved` are configs gpaco resolved before (a run's config.yaml): keys
    in them that do not apply are dropped, as older versions saved every key.
    """
    known = known_keys(catalogue)
    values: dict[str, Any] = {}
    setter: dict[str, int] = {}  # key -> index of the last layer that set it
    for index, (origin, layer) in enumerate(layers):
        for path, value in flatten(layer, origin, known).items():
            values[path], setter[path] = value, index
    defaults = shared_defaults()
    chosen = {**defaults, **values}
    _check_choice(chosen, "task", catalogue.tasks, "")
    task = catalogue.tasks[chosen["task"]]
    tables = {**task.choices, **catalogue.choices}
    for key, table in tables.items():
        if key == "data.dataset":
            _check_dataset(chosen, catalogue)
        _check_choice(chosen, key, table, f" for task={chosen['task']}" if key in task.choices
                      else "")
    entries: list[Entry] = [task, *(tables[key][chosen[key]] for key in tables)]
    active: dict[str, Option] = {}
    for entry in entries:
        active.update(entry.options)
    for path in [p for p in values if p not in defaults and p not in active]:
        choice, users = _owner(path, tables, catalogue)
        if values[path] is None or setter[path] < setter.get(choice, -1) or setter[path] <= saved:
            del values[path]  # unset, or set for an earlier choice that a later layer replaced
            continue
        raise UserError(f"{path} (set by {layers[setter[path]][0]}) does not apply to {choice}="
                        f"{chosen[choice]}; it is used by {choice}={'|'.join(users)}")
    _drop_overridden_blr(values, setter, saved, layers)
    owned = {k: o.default for k, o in active.items()}
    merged = task.settle({**defaults, **owned, **{k: v for k, v in values.items()
                                                  if v is not None or k not in active}})
    cfg = _typed(merged, active, catalogue)
    validate(cfg, active, entries)  # types and ranges first: a negative count is that
    if _check_conditional(task, merged, values, {**defaults, **owned}, setter, layers, saved):
        cfg = _typed(merged, active, catalogue)
    return cfg


def _owner(path: str, tables: Mapping[str, Mapping[str, Entry]],
           catalogue: Catalogue) -> tuple[str, list[str]]:
    """(the choice key `path` follows, the values of that choice that use it); a key no table of
    this task has belongs to the tasks that have it."""
    for key, table in tables.items():
        users = [name for name, entry in table.items() if path in entry.options]
        if users:
            return key, users
    return "task", [name for name, t in catalogue.tasks.items() if path in t.all_options()]


def _check_choice(chosen: dict[str, Any], path: str, table: Mapping[str, Any], where: str) -> None:
    if chosen[path] not in table:
        raise UserError(f"{path} must be one of {', '.join(table)}{where}, not {chosen[path]!r}")


def _check_dataset(chosen: dict[str, Any], catalogue: Catalogue) -> None:
    name, task = chosen["data.dataset"], chosen["task"]
    datasets = catalogue.tasks[task].choices["data.dataset"]
    owner = next((t for t, entry in catalogue.tasks.items()
                  if name in entry.choices.get("data.dataset", {})), None)
    if name not in datasets and owner is not None:
        raise UserError(f"data.dataset={name} is a {owner} dataset; set task={owner} "
                        f"(task={task} takes {', '.join(datasets)})")


def _drop_overridden_blr(values: dict[str, Any], setter: dict[str, int], saved: int,
                         layers: list[tuple[str, Layer]]) -> None:
    """optim.lr set after optim.blr wins; both in one layer is an error (but a saved config
    holds both: its lr is the one blr gave, recomputed on loading)."""
    if values.get("optim.blr") is None or "optim.lr" not in setter:
        return
    if setter["optim.lr"] > setter["optim.blr"]:
        del values["optim.blr"]
    elif setter["optim.lr"] == setter["optim.blr"] > saved:
        raise UserError(f"{layers[setter['optim.lr']][0]} sets both optim.lr and optim.blr; "
                        "give one (lr = blr * train.batch_size / 256)")


def _check_conditional(task: TaskEntry, merged: dict[str, Any], values: dict[str, Any],
                       defaults: dict[str, Any], setter: dict[str, int],
                       layers: list[tuple[str, Layer]], saved: int) -> bool:
    """Refuse (or drop, see options.Condition) the keys set to other than their default where
    they cannot act (the default is what an unset key has anyway: `gpaco config` output reads).
    Returns whether a key was dropped (reset to its default in `merged`)."""
    dropped = False
    for path, (on, acts, where) in task.conditions.items():
        if values.get(path) is None or values[path] == defaults.get(path) or acts(merged):
            continue
        if setter[path] < max(setter.get(k, -1) for k in on) or setter[path] <= saved:
            merged[path], dropped = defaults.get(path), True  # belonged to an earlier setting
            continue
        shown = ", ".join(f"{k}={merged[k]}" for k in on)
        raise UserError(f"{path}={values[path]} (set by {layers[setter[path]][0]}) has no "
                        f"effect here ({shown}); it acts only with {where}")
    return dropped


# -- the typed config ----------------------------------------------------------------------------
def _typed(merged: dict[str, Any], active: Mapping[str, Option], catalogue: Catalogue) -> Config:
    """The Config of flat `merged` values, with optim.lr from optim.blr where that is set."""
    owned_anywhere = catalogue.owned_keys()
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    top: dict[str, Any] = {}
    shared = shared_types()
    for path, value in merged.items():
        if path not in shared and path not in active:
            continue
        kind = shared[path] if path in shared else active[path].kind
        value = coerce(value, kind, path)
        if "." in path:
            section, key = path.split(".", 1)
            sections.setdefault(section, {})[key] = value
        else:
            top[path] = value
    for name, keys in sections.items():
        top[name] = _section_class(name)(**keys).with_inactive(
            tuple(k.split(".", 1)[1] for k in owned_anywhere
                  if k.startswith(name + ".") and k not in active))
    # A section only another task has (segmentation's inference): every key reads None.
    others = {k.split(".", 1)[0] for k in owned_anywhere} - sections.keys()
    empty = {name: _section_class(name)().with_inactive(
        tuple(k.split(".", 1)[1] for k in owned_anywhere if k.startswith(name + ".")))
        for name in sorted(others)}
    cfg = Config(**top).with_inactive(tuple(empty))
    cfg.__dict__["_inactive_sections"] = empty
    if cfg.optim.blr is not None:
        cfg.optim.lr = cfg.optim.blr * cfg.train.batch_size / REFERENCE_BATCH
    return cfg


@lru_cache(maxsize=None)
def _section_class(name: str) -> type[Section]:
    """The class of section `name`: a shared one, or (a section only some task has) its own."""
    return SECTIONS.get(name) or type(f"{name.title()}Config", (Section,), {})


def flat_dict(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted path: value} of a nested config dict (`to_dict`'s, a saved config.yaml's)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict) and key != "backbone_kwargs":
            out.update(flat_dict(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def as_flat(cfg: Section) -> dict[str, Any]:
    """{dotted path: value} of every key (see `to_dict`)."""
    return flat_dict(to_dict(cfg))


def to_dict(cfg: Section) -> dict[str, Any]:
    """Plain nested dict (what checkpoints and config.yaml hold): the run's keys, then as null
    the keys other choices own."""
    out = {k: to_dict(v) if isinstance(v, Section) else _copy(v)
           for k in cfg.keys() for v in [getattr(cfg, k)]}
    for key in cfg.inactive_keys():
        value = getattr(cfg, key)
        out[key] = to_dict(value) if isinstance(value, Section) else None
    return out


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict)
                                                          else value)


# -- checks --------------------------------------------------------------------------------------
_POSITIVE = ("train.batch_size", "schedule.epochs", "train.eval_every", "train.val_every",
             "train.eval_batch_size", "train.log_every", "optim.lr", "train.max_steps_per_epoch",
             "train.accum_iter", "optim.blr", "train.checkpoint_every_steps", "train.threads")
_NON_NEGATIVE = ("schedule.warmup_epochs", "optim.weight_decay", "data.workers")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(cfg: Config, active: Mapping[str, Option], entries: list[Entry]) -> None:
    """Reject values no run could use, naming the key (types are checked on building); then
    each chosen entry's own check."""
    flat = as_flat(cfg)
    ranges = [(p, "positive") for p in _POSITIVE] + [(p, "non_negative") for p in _NON_NEGATIVE]
    ranges += [(p, o.check) for p, o in active.items() if o.check]
    for path, check in ranges:  # "auto" and None are choices, not numbers
        value = flat.get(path)
        if check == "positive" and _is_number(value) and value <= 0:
            raise UserError(f"{path} must be positive, not {value!r}")
        if check == "non_negative" and _is_number(value) and value < 0:
            raise UserError(f"{path} must not be negative, not {value!r}")
    data = cfg.data
    for key in ("mean", "std"):
        if getattr(data, key) is not None and len(getattr(data, key)) != 3:
            raise UserError(f"data.{key} must list 3 numbers (one per channel)")
    if cfg.model.pretrained is True:
        raise UserError("model.pretrained=true does not say which weights; name them (e.g. "
                        "model.pretrained=IMAGENET1K_V1 for torchvision's first ResNet weights) "
                        "or give a local file")
    if cfg.train.batch_size % cfg.train.accum_iter:
        raise UserError(f"train.batch_size ({cfg.train.batch_size}) must be a multiple of "
                        f"train.accum_iter ({cfg.train.accum_iter})")
    for entry in entries:
        if entry.check is not None:
            entry.check(cfg)
