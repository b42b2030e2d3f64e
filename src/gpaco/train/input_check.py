"""Whether a model can take the input a run will give it, checked before the first step."""

from __future__ import annotations

import torch
from torch import nn

from gpaco.errors import UserError


@torch.no_grad()
def check_model_takes_input(model: nn.Module, image_size: int | tuple[int, int],
                            device: torch.device, backbone: str,
                            key: str = "data.image_size") -> None:
    """One forward of one blank image of the run's size (`key`: the config key that sets it),
    in eval mode (no statistic or queue changes); a model that cannot take it (a ViT built for
    another size, a network that shrinks the image below 1 pixel, a patch size that does not
    divide a segmentation crop) is one line naming the keys that disagree, not a traceback from
    inside the first step."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, h, w, device=device))
    except (AssertionError, RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(image_size, int):
            fix = (f"set {key} to the size the model takes, or build the model for this size "
                   f"(e.g. model.backbone_kwargs={{img_size: {image_size}}} for a ViT)")
            value: object = image_size
        else:  # a segmentation crop: every encoder takes multiples of its stride 32
            fix, value = f"give a {key} the model takes (multiples of 32 fit every encoder)", [h, w]
        raise UserError(f"model.backbone={backbone} cannot take the run's input, "
                        f"{key}={value} ({reason}); {fix}") from None
    finally:
        model.train(was_training)
