"""Whether a model can take the input a run will give it, checked before the first step."""

from __future__ import annotations

import torch
from torch import nn

from gpaco.errors import UserError


@torch.no_grad()
def check_model_takes_input(model: nn.Module, image_size: int, device: torch.device,
                            backbone: str) -> None:
    """One forward of one blank image of the run's size, in eval mode (no statistic or queue
    changes); a model that cannot take it (a ViT built for another size, a network that
    shrinks the image below 1 pixel) is one line naming the keys that disagree, not a
    traceback from inside the first step."""
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    except (AssertionError, RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"model.backbone={backbone} cannot take the run's input, "
                        f"data.image_size={image_size} ({reason}); set data.image_size to the "
                        f"size the model takes, or build the model for this size (e.g. "
                        f"model.backbone_kwargs={{img_size: {image_size}}} for a ViT)") from None
    finally:
        model.train(was_training)
