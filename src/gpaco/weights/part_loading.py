"""Load gpaco-named weights into a wrapper part by part, strict where it matters, and say so.

A wrapper's state_dict has parts by prefix: `backbone.`, `classifier.`, `head.` (projection),
`key_backbone.` / `key_head.` (PaCo's momentum encoder) and `queue.`. `load_parts` demands the
strict parts (default: backbone and classifier) match key for key and shape for shape, loads
each other part when both sides have it with the same shapes, never loads a queue (its keys
and labels belong to another run), starts a PaCo key encoder the file lacks as a copy of the
loaded online encoder, and returns a one-line account of what it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from gpaco.errors import UserError

PARTS = {"backbone.": "backbone", "classifier.": "classifier", "head.": "projection head",
         "key_backbone.": "key encoder", "key_head.": "key projection head", "queue.": "queue"}
STRICT_PARTS = ("backbone.", "classifier.")


def _tensors(n: int) -> str:
    return f"{n} tensor" if n == 1 else f"{n} tensors"


@dataclass
class ImportReport:
    """What loading a file into a model did; `str(report)` is one line."""

    source: str
    loaded: int
    dropped: dict[str, int]
    left: list[str]

    def __str__(self) -> str:
        line = f"loaded {_tensors(self.loaded)} from {self.source}"
        if self.dropped:
            line += "; dropped " + ", ".join(f"{k}: {_tensors(n)}" for k, n in self.dropped.items())
        if self.left:
            line += "; " + "; ".join(self.left)
        return line


def _part(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def _fits(ours: dict[str, Tensor], theirs: dict[str, Tensor]) -> bool:
    return set(ours) == set(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)


def _check_classifier(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    weight = state.get("classifier.weight")
    have = tuple(model.classifier.weight.shape)
    if weight is not None and tuple(weight.shape) != have:
        raise UserError(f"{source}: the file's classifier has {weight.shape[0]} classes on "
                        f"{weight.shape[1]}-d features, the model's {have[0]} classes on "
                        f"{have[1]}-d features")


def _check_strict(target: dict[str, Tensor], state: dict[str, Tensor], prefix: str,
                  source: str, arch: str | None, model: nn.Module) -> None:
    """The same keys with the same shapes under `prefix`, or one line naming both sides."""
    ours, theirs = _part(target, prefix), _part(state, prefix)
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours))
    shape = [k for k in sorted(set(ours) & set(theirs)) if ours[k].shape != theirs[k].shape]
    if not (missing or extra or shape):
        return
    problem = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
               else f"{shape[0]} is {tuple(theirs[shape[0]].shape)} in the file, "
                    f"{tuple(ours[shape[0]].shape)} in the model")
    count = len(missing) + len(extra) + len(shape)
    subject = (f"backbone (arch {arch or 'unknown'}) does not fit the model's "
               f"{type(model.backbone).__name__}" if prefix == "backbone."
               else f"{PARTS.get(prefix, prefix)} does not fit the model's")
    raise UserError(f"{source}: the file's {subject}: {problem} ({count} mismatched tensors)")


def _copy_online_into_key_encoder(new: dict[str, Tensor], taken: dict[str, Tensor]) -> bool:
    """A PaCo model whose file has no momentum encoder starts it as a copy of the online one."""
    pairs = {k: "backbone." + k[len("key_backbone."):] for k in new
             if k.startswith("key_backbone.")}
    pairs |= {k: "head." + k[len("key_head."):] for k in new if k.startswith("key_head.")}
    if not pairs or any(k in taken for k in pairs) or \
            not all(s in taken and taken[s].shape == new[k].shape for k, s in pairs.items()):
        return False
    for k, s in pairs.items():
        new[k] = taken[s].clone()
    return True


def load_parts(model: nn.Module, state: dict[str, Tensor], *, source: str,
               arch: str | None = None, strict: Sequence[str] = STRICT_PARTS,
               dropped: dict[str, int] | None = None) -> ImportReport:
    """Load `state` (gpaco names, no DDP prefix) into a gpaco wrapper, part by part.

    Args:
        model: a wrapper with `.backbone` and a Linear `.classifier`.
        state: the weights to load.
        source, arch: name the file and its architecture in messages.
        strict: the parts (PARTS prefixes) that must match exactly; fine-tuning on other
            classes passes ("backbone.",) so the classifier is loaded only where it fits.
        dropped: parts the caller already left out (counted in the report).

    Raises:
        UserError: not a wrapper, or a strict part that does not match.
    """
    if not isinstance(getattr(model, "classifier", None), nn.Linear) or \
            not isinstance(getattr(model, "backbone", None), nn.Module):
        raise UserError(f"{type(model).__name__} is not a gpaco wrapper (needs .backbone and a "
                        "Linear .classifier)")
    target = model.state_dict()
    if "classifier." in strict:
        _check_classifier(model, state, source)
    for prefix in strict:
        _check_strict(target, state, prefix, source, arch, model)
    taken = {k: v for p in strict for k, v in _part(state, p).items()}
    dropped, left = dict(dropped or {}), []
    unknown = [k for k in state if not any(k.startswith(p) for p in PARTS)]
    if unknown:
        dropped["parts no gpaco model has"] = len(unknown)
    for prefix, what in PARTS.items():
        if prefix in strict:
            continue
        ours, theirs = _part(target, prefix), _part(state, prefix)
        if theirs and prefix != "queue." and _fits(ours, theirs):
            taken |= theirs
        elif theirs:
            dropped[f"{what} (shaped unlike the model's)" if ours and prefix != "queue."
                    else what] = len(theirs)
        if ours and prefix != "queue." and not _fits(ours, theirs):
            left.append(f"{what} left as built")
    new = {**target, **taken}
    if _copy_online_into_key_encoder(new, taken):
        left = [x for x in left if not x.startswith("key ")] + ["key encoder = online encoder"]
    model.load_state_dict(new, strict=True)
    return ImportReport(source, len(taken), dropped, left)
