"""Load MAE pretrained encoders (or timm ViT weights) into a `create_vit` backbone.

Accepted files:
- MAE's `{"model": encoder state_dict, ...}` (also with "optimizer", "epoch", "scaler" and an
  `argparse.Namespace` under "args", as MAE's and the authors' training checkpoints have);
- `{"state_dict": ...}` or a plain state dict; keys may carry DDP's "module." prefix;
- a timm / Hugging Face `.safetensors` file.

Pickled files are read with `torch.load(weights_only=True)`: no arbitrary code runs. The one
class allowed beyond tensors and containers is `argparse.Namespace` (plain attributes).

The position embedding is resampled bicubically on the patch grid when the checkpoint's grid
differs (extra tokens kept), with MAE's `interpolate_pos_embed` arithmetic (`F.interpolate`,
align_corners=False, no antialiasing). The encoder (patch_embed, blocks, cls_token, pos_embed)
must load completely; `fc_norm`, `norm` and `head` may be missing, since fine-tuning replaces or
re-initialises them. Everything that did not load is listed in the returned `LoadReport`.
"""

from __future__ import annotations

import argparse
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.errors import UserError

StateDict = dict[str, Tensor]

# Keys a fine-tuning model may lack in the file: MAE's pretrained encoder ends with `norm`
# (cls-token path) and has no `fc_norm` or `head`; every other model key must be in the file.
_OPTIONAL_PREFIXES = ("fc_norm.", "norm.", "head.")


@dataclass
class LoadReport:
    """What `load_mae_checkpoint` did.

    Attributes:
        path: the file.
        loaded: keys copied into the model.
        missing: model keys the file lacks (only among fc_norm / norm / head; the rest raises).
        unexpected: file keys the model has no place for (MAE's `norm`, a decoder, a head...).
        dropped_shape: file keys present in the model with another shape (a 1000-class head
            loaded into another head size), not loaded.
        pos_embed_grid: (file grid, model grid) when pos_embed was resampled, else None.
    """

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped_shape: list[str] = field(default_factory=list)
    pos_embed_grid: tuple[tuple[int, int], tuple[int, int]] | None = None

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line for logs."""
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.pos_embed_grid:
            (a, b), (c, d) = self.pos_embed_grid
            parts.append(f"pos_embed resampled {a}x{b} -> {c}x{d}")
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("dropped (shape)", self.dropped_shape)):
            if keys:
                parts.append(f"{label}: {_brief(keys)}")
        return "; ".join(parts)


def _brief(keys: list[str], limit: int = 6) -> str:
    """Key list with repeated block indices folded: blocks.0.x ... blocks.11.x -> blocks.*.x."""
    folded = sorted({re.sub(r"(?<=\.)\d+(?=\.)", "*", k) for k in keys})
    more = f" (+{len(folded) - limit} more)" if len(folded) > limit else ""
    return ", ".join(folded[:limit]) + more


def read_state_dict(path: str | Path) -> StateDict:
    """The tensors of a checkpoint file, unwrapped from "model" / "state_dict", "module." stripped.

    Raises:
        UserError: missing file, a pickle that needs more than weights, no tensors inside.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        obj: object = _read_safetensors(path)
    else:
        obj = _read_pickle(path)
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict (expected tensors, or a dict with 'model')")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _read_safetensors(path: Path) -> StateDict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise UserError(f"reading {path.name} needs safetensors: pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own SafetensorError for damaged files
        raise UserError(f"{path} is not a readable safetensors file ({err})") from None


def _read_pickle(path: Path) -> object:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} needs more than weights to unpickle and was not loaded "
                        f"(weights_only=True refused it: {first})") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise UserError(f"{path} is not a readable torch checkpoint ({err})") from None


def resample_pos_embed(pos_embed: Tensor, new_grid: tuple[int, int], num_extra_tokens: int) -> Tensor:
    """(1, extra + h*w, D) -> (1, extra + H*W, D), bicubic on the (square) patch grid.

    Raises:
        UserError: the file's patch tokens do not form a square grid.
    """
    extra, tokens = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    n, dim = tokens.shape[1], tokens.shape[2]
    side = round(n ** 0.5)
    if side * side != n:
        raise UserError(f"checkpoint pos_embed has {n} patch tokens after {num_extra_tokens} extra "
                        "tokens: not a square grid")
    if (side, side) == tuple(new_grid):
        return pos_embed
    grid = tokens.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    # MAE interpolates in the checkpoint's dtype; float32 keeps bicubic exact for half files.
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode="bicubic", align_corners=False)
    tokens = grid.permute(0, 2, 3, 1).flatten(1, 2).to(pos_embed.dtype)
    return torch.cat([extra, tokens], dim=1)


def _vit_shape(sd: StateDict) -> dict[str, int]:
    """Architecture numbers readable from a ViT state dict (embed dim, patch, depth, MLP width)."""
    proj = sd["patch_embed.proj.weight"]
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    shape = {"embed_dim": proj.shape[0], "patch": proj.shape[-1], "in_chans": proj.shape[1],
             "depth": max(blocks) + 1 if blocks else 0}
    if "blocks.0.mlp.fc1.weight" in sd:
        shape["mlp_dim"] = sd["blocks.0.mlp.fc1.weight"].shape[0]
    return shape


def _check_architecture(sd: StateDict, model: nn.Module, path: str) -> None:
    if "patch_embed.proj.weight" not in sd or not any(k.startswith("blocks.") for k in sd):
        raise UserError(f"{path} is not a ViT checkpoint (no patch_embed.proj.weight / blocks.*); "
                        f"first keys: {', '.join(list(sd)[:3])}")
    want, got = _vit_shape(model.state_dict()), _vit_shape(sd)
    diff = [f"{k} {got.get(k)} (model {v})" for k, v in want.items() if got.get(k) != v]
    if diff:
        raise UserError(f"{path} is not a ViT of the chosen size: file has {', '.join(diff)}")


def load_mae_checkpoint(model: nn.Module, path: str | Path) -> LoadReport:
    """Load an MAE / timm ViT file into `model` (a `create_vit` backbone, i.e. `wrapper.backbone`).

    Raises:
        UserError: unreadable file, not a ViT, a ViT of another size, or an incomplete encoder.
    """
    path_s = str(path)
    sd = read_state_dict(path)
    _check_architecture(sd, model, path_s)
    report = LoadReport(path_s)
    if "pos_embed" in sd and hasattr(model, "pos_embed"):
        grid = tuple(model.patch_embed.grid_size)
        extra = model.pos_embed.shape[1] - grid[0] * grid[1]
        old = sd["pos_embed"]
        sd["pos_embed"] = resample_pos_embed(old, grid, extra)
        if sd["pos_embed"] is not old:
            side = round((old.shape[1] - extra) ** 0.5)
            report.pos_embed_grid = ((side, side), (grid[0], grid[1]))
    target = model.state_dict()
    report.dropped_shape = sorted(k for k in sd if k in target and sd[k].shape != target[k].shape)
    for k in report.dropped_shape:
        del sd[k]
    report.missing = sorted(set(target) - set(sd))
    report.unexpected = sorted(set(sd) - set(target))
    # Checked before loading, so a refused file leaves the model untouched.
    encoder_missing = [k for k in report.missing if not k.startswith(_OPTIONAL_PREFIXES)]
    if encoder_missing:
        raise UserError(f"{path_s} lacks encoder weights the model needs: {_brief(encoder_missing)}")
    model.load_state_dict({k: v for k, v in sd.items() if k in target}, strict=False)
    report.loaded = sorted(k for k in sd if k in target)
    return report
