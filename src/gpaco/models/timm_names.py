"""How a config names a timm model: `timm:<name>` (gpaco.models.backbones, gpaco.models.vit)."""

TIMM_PREFIX = "timm:"
