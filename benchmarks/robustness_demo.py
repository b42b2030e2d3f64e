"""End to end on CPU: a tiny ViT with the GPaCo ViT recipe's machinery beside a ResNet-8, then
the robustness suite on a corrupted copy of the Fashion-MNIST-LT test images.

1. Train, through `gpaco.train.trainer.train` on the embedded Fashion-MNIST-LT set (2,478
   long-tailed 28 x 28 training images, 10 classes):
   - "vit": recipe `imagenet-gpaco-vit-b` (GPaCo loss alpha 0.2 / tau 0.2 / smoothing 0.1, GELU
     projection, centers init std 2e-5, views randclsstack + RandAugment n12 m10 and sim,
     AdamW + layer decay 0.65, blr, per-step warm-up + cosine, accum_iter 2) with a tiny
     backbone (patch 4 on 28 x 28, width 64, 4 blocks, drop path 0.1), random init (there is
     no MAE pretraining here), queue 1024, fp32;
   - "resnet8": recipe `fashion-mnist-lt-gpaco` (SGD, its CIFAR-style views) on the same data.
2. Corrupt `--per-class` test images per class with 7 of ImageNet-C's corruptions at 5
   severities (re-implemented simply here on grey 28 x 28 images with Hendrycks' severity
   constants from `make_imagenet_c.py`), written as PNG in ImageNet-C's flat layout under wnid
   folders (class k -> the k-th ImageNet wnid); the clean images go to a class-folder set.
3. Evaluate both with `gpaco.tasks.classification.robustness.evaluate_suite` (partial: 10 of 1000 classes, 7 of 15
   corruptions; the 10 logits padded to 1000; no resize, the 28 px images as they are).

What this shows: the ViT recipe's machinery and the suite running end to end on real images,
and how each model's error grows with severity. What it does not: anything about ImageNet,
MAE fine-tuning or the paper's ViT-vs-ResNet robustness claims (a ViT trained from scratch on
2.5k images is not a fine-tuned ViT-B); the mCE here is over 7 corruptions and 10 classes, and
the AlexNet-normalised mCE is meaningless for this data.

  OMP_NUM_THREADS=2 python benchmarks/robustness_demo.py --out benchmarks/results-robustness-demo
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.transforms import FMNIST_MEAN, FMNIST_STD
from gpaco.config import core as C
from gpaco.tasks.classification.restore import load_model
from gpaco.train.trainer import train
from gpaco.tasks.classification.robustness import evaluate_suite, imagenet_wnids, write_results

COMMON = ["data.dataset=embedded", "data.workers=0", "train.device=cpu",
          "output.progress=none", "output.tensorboard=false", "output.plots=false"]
MODELS = {
    "vit": ("imagenet-gpaco-vit-b", [
        "data.image_size=28", "data.mean=[0.286,0.286,0.286]", "data.std=[0.353,0.353,0.353]",
        "model.backbone=vit_micro_patch4_32", "model.pretrained=false",
        "model.backbone_kwargs={img_size: 28, embed_dim: 64, depth: 4, num_heads: 4, "
        "drop_path_rate: 0.1}",
        "model.queue_size=1024", "train.amp=none", "train.batch_size=128", "train.accum_iter=2",
        "optim.blr=2e-3", "train.eval_every=1000"]),
    "resnet8": ("fashion-mnist-lt-gpaco", ["train.eval_every=1000"]),
}

# Hendrycks' severity constants for each corruption (make_imagenet_c.py), images in [0, 1].
SEVERITY = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
    "shot_noise": [60, 25, 12, 5, 3],
    "impulse_noise": [0.03, 0.06, 0.09, 0.17, 0.27],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    "jpeg_compression": [25, 18, 15, 10, 7],
}


def corrupt(x: np.ndarray, name: str, c: float, rng: np.random.Generator) -> np.ndarray:
    """One grey image (H, W) in [0, 1] -> corrupted, in [0, 1]."""
    if name == "gaussian_noise":
        return np.clip(x + rng.normal(0.0, c, x.shape), 0, 1)
    if name == "shot_noise":
        return np.clip(rng.poisson(x * c) / c, 0, 1)
    if name == "impulse_noise":  # salt and pepper, half each, on a fraction c of the pixels
        out = x.copy()
        hit = rng.random(x.shape) < c
        out[hit] = (rng.random(int(hit.sum())) < 0.5).astype(x.dtype)
        return out
    if name == "contrast":
        return np.clip((x - x.mean()) * c + x.mean(), 0, 1)
    if name == "brightness":  # HSV value + c; for a grey image the value is the pixel
        return np.clip(x + c, 0, 1)
    img = Image.fromarray((x * 255).round().astype(np.uint8))
    if name == "pixelate":
        side = x.shape[0]
        small = img.resize((int(side * c), int(side * c)), Image.BOX)
        return np.asarray(small.resize((side, side), Image.BOX), dtype=np.float64) / 255
    if name == "jpeg_compression":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(c))
        return np.asarray(Image.open(buf), dtype=np.float64) / 255
    raise ValueError(name)


class PadTo1000(nn.Module):
    """A 10-class model as a 1000-logit ImageNet model: class k is column k, the rest -1e4."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x)
        out = logits.new_full((x.shape[0], 1000), -1e4)
        out[:, : logits.shape[1]] = logits
        return out


def train_model(kind: str, epochs: int, seed: int, folder: Path) -> tuple[nn.Module, dict]:
    """Train one of MODELS through the engine; returns the model (eval mode) and run facts."""
    recipe, overrides = MODELS[kind]
    warmup = max(1, epochs // 10)
    cfg = C.load_config(recipe, overrides=[*COMMON, *overrides, f"schedule.epochs={epochs}",
                                           f"schedule.warmup_epochs={warmup}", f"seed={seed}",
                                           f"output.dir={folder / kind}"])
    start = time.perf_counter()
    summary = train(cfg, folder / kind, overwrite=True)
    loaded = load_model(folder / kind / "last.pt")
    info = {"recipe": recipe, "overrides": overrides, "epochs": epochs, "lr": cfg.optim.lr,
            "optimizer": cfg.optim.name, "schedule": cfg.schedule.name,
            "params": sum(p.numel() for p in loaded.model.parameters()),
            "train_seconds": round(time.perf_counter() - start, 1),
            "test_top1_embedded": summary["last"]["top1"], "many": summary["last"]["many"],
            "few": summary["last"]["few"]}
    return loaded.model.eval(), info


def write_sets(root: Path, per_class: int, seed: int) -> None:
    """root/clean/<wnid>/i.png and root/c/<corruption>/<severity>/<wnid>/i.png."""
    test = EmbeddedFashionMNISTLT(train=False)
    grey = test.data[..., 0].astype(np.float64) / 255
    targets = np.array(test.targets)
    wnids = imagenet_wnids()
    chosen = [i for k in range(10) for i in np.flatnonzero(targets == k)[:per_class]]
    for j, i in enumerate(chosen):
        wnid = wnids[targets[i]]
        _save(root / "clean" / wnid / f"{j}.png", grey[i])
    for name, levels in SEVERITY.items():
        for s, c in enumerate(levels, start=1):
            rng = np.random.default_rng([seed, s, list(SEVERITY).index(name)])
            for j, i in enumerate(chosen):
                wnid = wnids[targets[i]]
                _save(root / "c" / name / str(s) / wnid / f"{j}.png", corrupt(grey[i], name, c, rng))


def _save(path: Path, grey: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grey * 255).round().astype(np.uint8)).convert("RGB").save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="vit,resnet8")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results-robustness-demo"))
    args = parser.parse_args()
    summary_path = args.out / "summary.json"  # runs of single models (--models) add to it
    summary: dict = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.update({"torch": torch.__version__, "threads": torch.get_num_threads()})
    common = dict(partial=True, image_size=28, resize_size=28, mean=FMNIST_MEAN, std=FMNIST_STD,
                  batch_size=100, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_sets(Path(tmp), args.per_class, args.seed)
        for kind in args.models.split(","):
            model, info = train_model(kind, args.epochs, args.seed, Path(tmp) / "runs")
            wrapped = PadTo1000(model)
            interp = "bicubic" if kind == "vit" else "bilinear"
            clean = evaluate_suite(wrapped, "imagenet-val", Path(tmp) / "clean",
                                   interpolation=interp, **common)
            c = evaluate_suite(wrapped, "imagenet-c", Path(tmp) / "c",
                               corruptions=list(SEVERITY), interpolation=interp, **common)
            write_results(clean, args.out / kind)
            write_results(c, args.out / kind)
            summary[kind] = {"training": info, "images_per_folder": 10 * args.per_class,
                             "clean_top1_error": clean.summary["top1_error"],
                             "corruption_errors": c.summary["corruption_errors"],
                             "mce_unnormalized_over_7": c.summary["mce_unnormalized"],
                             "severity_errors": {p.name: round(p.top1_error, 4)
                                                 for p in c.parts}}
            print(kind, json.dumps({k: v for k, v in summary[kind].items()
                                    if k != "severity_errors"}, indent=2), flush=True)
            summary_path.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
