"""Parameter counts per part of a gpaco model (run start lines, `gpaco config`).

Parts by top-level module: the encoder (`backbone`, `encoder`, and the encoder's stage norms
`encoder_norms`), the `decoder` (segmentation), PaCo's momentum copies (`key_*`, not trained
by gradient) and the heads (everything else: classifier, projection, auxiliary head).
"""

from __future__ import annotations

from torch import nn

_ENCODER = ("backbone", "encoder", "encoder_norms")


def _part(name: str) -> str:
    if name in _ENCODER:
        return "encoder"
    if name == "decoder":
        return "decoder"
    return "momentum copy" if name.startswith("key_") else "heads"


def part_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per part, in the order encoder, decoder, heads, momentum copy (those present)."""
    counts: dict[str, int] = {}
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[_part(name)] = counts.get(_part(name), 0) + n
    order = ("encoder", "decoder", "heads", "momentum copy")
    return {k: counts[k] for k in order if k in counts}


def describe_parts(model: nn.Module) -> str:
    """One line: `parameters: encoder 23,527,264 | decoder ... | total ...`."""
    counts = part_counts(model)
    parts = " | ".join(f"{k} {v:,}" for k, v in counts.items())
    return f"parameters: {parts} | total {sum(counts.values()):,}"
