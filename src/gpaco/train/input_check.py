"""Whether a model can take the input a run will give it, checked before the first step."""

from __future__ import annotations

import torch
from torch import nn

from gpaco.errors import UserError


@torch.no_grad()
def check_model_takes_input(model: nn.Module, image_size: int | tuple[int, int],
                            device: torch.device, backbone: str,
                            key: str = "data.image_size", fix: str | None = None) -> None:
    """One forward of one blank image of the run's size (`key`: the config key that sets it),
    in eval mode (no statistic or queue changes); a model that cannot take it (a ViT built for
    another size, a network that shrinks the image below 1 pixel, a patch size that does not
    divide a segmentation crop) is one line naming the keys that disagree, not a traceback from
    inside the first step. `fix`: what the user should change, when the default advice for `key`
    does not apply."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, h, w, device=device))
    except (AssertionError, RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(image_size, int):
            value: object = image_size
            default_fix = (f"set {key} to the size the model takes, or build the model for "
                           f"this size (e.g. model.backbone_kwargs={{img_size: {image_size}}} "
                           "for a ViT)")
        else:  # a segmentation crop: every encoder takes multiples of its stride 32
            value = [h, w]
            default_fix = f"give a {key} the model takes (multiples of 32 fit every encoder)"
        fix = fix or default_fix
        raise UserError(f"model.backbone={backbone} cannot take the run's input, "
                        f"{key}={value} ({reason}); {fix}") from None
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluation_input_size(loader: object) -> tuple[int, int] | None:
    """(H, W) of the images an evaluation loader gives, from its first image: a tensor loader's
    view of its first stored image, or a DataLoader's dataset item 0 (one file read). None when
    the loader has neither (nothing to check)."""
    images, views = getattr(loader, "images", None), getattr(loader, "views", None)
    if isinstance(images, torch.Tensor) and views:
        out = views[0](images[:1], torch.Generator(device=images.device))
        return tuple(out.shape[-2:])
    dataset = getattr(loader, "dataset", None)
    if dataset is None or len(dataset) == 0:
        return None
    item = dataset[0]  # a skipped bad file (data.on_bad_image=skip) is no tuple: no check
    image = item[0] if isinstance(item, (tuple, list)) and item else None
    return tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else None
