"""Segmentation models with the GPaCo branch: smp encoder, mmseg's decoders, our heads.

segmentation-models-pytorch supplies the encoder (smp ResNets, `tu-<name>` timm encoders incl.
Swin). The decoder, whose output is the fused stride-4 feature F, is mmseg's as the authors
used it (`upernet`, `deeplabv3plus`: gpaco.models.mmseg_decoders; a Swin encoder also gets
mmseg's per-stage LayerNorms `encoder_norms`), or smp's smaller and faster ones
(`smp-upernet`, `smp-deeplabv3plus`).
As in the authors' heads (paper-spec section 6) three heads sit on top:
- the classifier `conv_seg` = 1x1 conv after Dropout2d(0.1); its stride-4 logits are both the
  decode logits (upsampled for CE) and the GPaCo center logits (not upsampled);
- the projection branch on the same F: 1x1 conv-BN-ReLU, 1x1 conv-BN-ReLU, 1x1 conv to 128;
- an FCN auxiliary head (3x3 conv-BN-ReLU, Dropout2d(0.1), 1x1 conv) on the encoder's
  second-to-last stage (mmseg's `in_index=2`: res4 of a ResNet, stage 3 of a Swin).
No weights are downloaded: encoders start random or load a local file (`encoder_checkpoint`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.errors import UserError

from .mmseg_decoders import SeparableASPPDecoder, UPerDecoder

ARCHITECTURES = ("upernet", "deeplabv3plus", "smp-upernet", "smp-deeplabv3plus")
# The authors' Swin AdamW `paramwise_cfg`: decay_mult 0 for names containing one of these,
# every other parameter (biases and the heads' BN included) is decayed.
NO_WEIGHT_DECAY_KEYS = ("absolute_pos_embed", "relative_position_bias_table", "norm")


@dataclass
class SegmentationTrainOutput:
    """What `Segmenter.forward_train` hands to `SegmentationLoss`.

    Attributes:
        logits: (N, C, H/4, W/4) decode logits = GPaCo center logits.
        embeddings: (N, D, H/4, W/4) projection output (not normalised), or None without GPaCo.
        aux_logits: (N, C, h, w) FCN auxiliary logits at the encoder stage's stride, or None.
    """

    logits: Tensor
    embeddings: Tensor | None
    aux_logits: Tensor | None


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _classifier(in_ch: int, num_classes: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, num_classes, 1)
    nn.init.normal_(conv.weight, std=0.01)  # mmseg's conv_seg init
    nn.init.zeros_(conv.bias)
    return conv


class FCNHead(nn.Sequential):
    """Auxiliary FCN head (mmseg FCNHead, num_convs=1, no input concat)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256) -> None:
        super().__init__(
            _conv_bn_relu(in_channels, channels, 3),
            nn.Dropout2d(0.1),
            _classifier(channels, num_classes),
        )


class PixelProjection(nn.Sequential):
    """The GPaCo projection branch: two 1x1 conv-BN-ReLU, then a 1x1 conv to `dim`."""

    def __init__(self, in_channels: int, dim: int = 128) -> None:
        super().__init__(
            _conv_bn_relu(in_channels, in_channels, 1),
            _conv_bn_relu(in_channels, in_channels, 1),
            nn.Conv2d(in_channels, dim, 1),
        )


class StageNorm(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) feature (mmseg's Swin `norm{i}`)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Segmenter(nn.Module):
    """Encoder + decoder (stride-4 output with `decoder_channels`) + classifier / projection /
    auxiliary heads. `model(x)` gives (N, C, H, W) logits at input size (inference);
    `model.forward_train(x)` gives a `SegmentationTrainOutput`. Input sides must be multiples
    of `size_divisor` (the inference helpers pad to it)."""

    size_divisor = 32

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        decoder_channels: int,
        num_classes: int,
        *,
        projection_dim: int | None = 128,
        aux_in_channels: int | None = None,
        aux_channels: int = 256,
        stage_norms: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        # LayerNorms on the last len(stage_norms) encoder stages, before decoder and aux head.
        self.encoder_norms = (nn.ModuleList(StageNorm(c) for c in stage_norms)
                              if stage_norms else None)
        self.decoder = decoder
        self.num_classes = num_classes
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = _classifier(decoder_channels, num_classes)
        self.projection = (
            PixelProjection(decoder_channels, projection_dim) if projection_dim else None
        )
        self.aux_head = (
            FCNHead(aux_in_channels, num_classes, aux_channels) if aux_in_channels else None
        )

    def no_weight_decay_keys(self) -> tuple[str, ...]:
        """AdamW decays exactly the parameters whose names contain none of these (the
        authors' paramwise_cfg; gpaco.train.optimizer.decay_groups)."""
        return NO_WEIGHT_DECAY_KEYS

    def _features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        stages = list(self.encoder(x))
        if self.encoder_norms is not None:
            first = len(stages) - len(self.encoder_norms)
            stages[first:] = [norm(s) for norm, s in zip(self.encoder_norms, stages[first:])]
        return stages, self.decoder(stages)

    def forward(self, x: Tensor) -> Tensor:
        _, fused = self._features(x)
        logits = self.classifier(self.dropout(fused))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward_train(self, x: Tensor) -> SegmentationTrainOutput:
        stages, fused = self._features(x)
        logits = self.classifier(self.dropout(fused))
        embeddings = self.projection(fused) if self.projection is not None else None
        aux = self.aux_head(stages[-2]) if self.aux_head is not None else None
        return SegmentationTrainOutput(logits, embeddings, aux)


def _smp_parts(arch: str, encoder: str, decoder_channels: int, output_stride: int | None,
               **kw: Any) -> tuple[nn.Module, nn.Module | None]:
    """smp's encoder, and for the smp-* architectures smp's decoder (None otherwise)."""
    import segmentation_models_pytorch as smp  # optional dependency, imported on use

    if arch.endswith("upernet"):
        if output_stride not in (None, 32):
            raise UserError(f"{arch} takes no encoder_output_stride (its encoder keeps stride 32)")
        if arch == "upernet":
            return smp.encoders.get_encoder(encoder, weights=None, **kw), None
        net = smp.UPerNet(encoder, encoder_weights=None, decoder_channels=decoder_channels, **kw)
    elif arch == "deeplabv3plus":
        return smp.encoders.get_encoder(encoder, weights=None, output_stride=output_stride or 16,
                                        **kw), None
    else:
        net = smp.DeepLabV3Plus(encoder, encoder_weights=None,
                                encoder_output_stride=output_stride or 16,
                                decoder_channels=decoder_channels, **kw)
    return net.encoder, net.decoder


def create_segmenter(
    arch: str,
    encoder: str,
    num_classes: int,
    *,
    decoder_channels: int = 256,
    projection_dim: int | None = 128,
    aux: bool = True,
    aux_channels: int = 256,
    encoder_output_stride: int | None = None,
    encoder_checkpoint: str | Path | None = None,
    c1_channels: int = 48,
    **encoder_kwargs: Any,
) -> Segmenter:
    """Build a `Segmenter`.

    Args:
        arch: "upernet" / "deeplabv3plus" (mmseg's UPerHead / DepthwiseSeparableASPPHead, as
            the authors), or "smp-upernet" / "smp-deeplabv3plus" (smp's decoders).
        encoder: an smp encoder name ("resnet50") or "tu-<timm name>" ("tu-resnet50c",
            "tu-swin_tiny_patch4_window7_224"; timm Swins also need `img_size=<crop>`).
        num_classes: C.
        decoder_channels: width of the decoder and of F (the authors' heads use 512).
        projection_dim: GPaCo embedding size; None builds the CE-only baseline (no branch).
        aux: add the FCN auxiliary head (weight 0.4 in `SegmentationLoss`).
        encoder_output_stride: DeepLabV3+ only, 8 (the authors' D8 ResNets) or 16.
        encoder_checkpoint: a local weight file for the encoder (see `load_encoder_weights`).
        c1_channels: mmseg DeepLabV3+'s low-level branch width (48; the authors' R18: 12).
        encoder_kwargs: passed to the timm encoder (e.g. img_size, drop_path_rate).
    """
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown segmentation architecture {arch!r}; choose from {ARCHITECTURES}")
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    if "swin" in encoder:  # evaluation feeds whole images of any size, not only the crop's
        encoder_kwargs = {"dynamic_img_size": True, **encoder_kwargs}
    enc, dec = _smp_parts(arch, encoder, decoder_channels, encoder_output_stride, **encoder_kwargs)
    if encoder_checkpoint is not None:
        load_encoder_weights(enc, encoder_checkpoint)
    stages = list(enc.out_channels[-4:])  # stride 4, 8, 16, 32 (D8: 4, 8, 8, 8)
    norms = None
    if arch == "deeplabv3plus":
        dec = SeparableASPPDecoder(stages[-1], stages[0], decoder_channels, c1_channels)
    elif arch == "upernet":
        dec = UPerDecoder(stages, decoder_channels)
        norms = stages if "swin" in encoder else None  # mmseg's Swin has norm0-3
    aux_in = enc.out_channels[-2] if aux else None
    return Segmenter(enc, dec, decoder_channels, num_classes, projection_dim=projection_dim,
                     aux_in_channels=aux_in, aux_channels=aux_channels, stage_norms=norms)


_WRAPPER_KEYS = ("state_dict", "model")
_PREFIXES = ("module.", "backbone.", "encoder.")


def _unwrap(state: Any, path: Path) -> dict[str, Tensor]:
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path} does not hold a state_dict of tensors")
    cleaned = {}
    for name, value in state.items():
        for prefix in _PREFIXES:
            name = name.removeprefix(prefix)
        cleaned[_timm_stem(name)] = value
    return cleaned


def _timm_stem(name: str) -> str:
    """mmcls / mmseg ResNet-V1c stem names (stem.0-7, as open-mmlab's resnet50_v1c) in timm's
    deep-stem names (conv1.0-6, bn1); other names unchanged."""
    match = re.fullmatch(r"stem\.(\d)\.(.+)", name)
    if match is None:
        return name
    index, rest = int(match.group(1)), match.group(2)
    return f"bn1.{rest}" if index == 7 else f"conv1.{index}.{rest}"


def _timm_swin_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A Swin file in Microsoft's release layout (the one the ADE20K recipes name) in timm's:
    the original stores each patch merging at the end of a stage (stage 0 has one), timm at
    the start of the next, and the original also saves the relative-position index and
    attention-mask buffers, which timm rebuilds. The rule is timm's `checkpoint_filter_fn`;
    that function needs the unflattened model, which smp's features-only encoder is not. Other
    files pass unchanged."""
    if "layers.0.downsample.reduction.weight" not in state:
        return state
    out = {}
    for name, value in state.items():
        if name.endswith(("relative_position_index", "attn_mask")):
            continue
        name = re.sub(r"^layers\.(\d+)\.downsample\.",
                      lambda m: f"layers.{int(m.group(1)) + 1}.downsample.", name)
        out[name.replace("head.", "head.fc.", 1) if name.startswith("head.") else name] = value
    return out


def _flattened_name(name: str, own: dict[str, Tensor]) -> str:
    """A timm model's key (`layers.0.blocks.0...`) under the name its features_only wrapper
    gives it (timm flattens sequential stages: `layers_0.blocks.0...`), where the encoder has
    that name and not the original."""
    if name in own:
        return name
    flat = re.sub(r"^([A-Za-z_]\w*?)\.(\d+)\.", r"\1_\2.", name)
    return flat if flat in own else name


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> list[str]:
    """Load a classification checkpoint (a state_dict, or one under "state_dict"/"model",
    keys optionally prefixed module./backbone./encoder.) into an smp encoder.

    Checkpoint keys the encoder lacks (the classifier fc/head) are dropped and returned;
    encoder keys missing from the file, or a shape mismatch, raise UserError.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"encoder checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise UserError(f"cannot read encoder checkpoint {path}: {type(e).__name__}") from None
    state = _timm_swin_layout(_unwrap(state, path))
    # timm encoders wrap the network as `encoder.model`; smp ResNets are the network itself.
    target = encoder.model if isinstance(getattr(encoder, "model", None), nn.Module) else encoder
    own = target.state_dict()
    state = {_flattened_name(k, own): v for k, v in state.items()}
    missing = sorted(set(own) - set(state))
    if missing:
        raise UserError(f"{path} lacks {len(missing)} encoder weights, e.g. {missing[0]}")
    for name in own:
        if state[name].shape != own[name].shape:
            raise UserError(f"{path}: {name} has shape {tuple(state[name].shape)}, "
                            f"the encoder expects {tuple(own[name].shape)}")
    target.load_state_dict({k: state[k] for k in own})
    return sorted(set(state) - set(own))
