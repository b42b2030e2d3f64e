"""End-to-end demo of the robustness suite on the embedded Fashion-MNIST-LT test images.

1. Train a small ViT (patch 4 on 28 x 28, width 64, 4 blocks) with cross-entropy for a few
   epochs on the embedded long-tailed training set, with the MAE recipe's optimiser pieces
   (layer-decay AdamW groups, per-iteration warm-up + cosine lr).
2. Corrupt `--per-class` test images per class with 7 of ImageNet-C's corruptions at 5
   severities, re-implemented simply here on grey 28 x 28 images with Hendrycks' severity
   constants (`make_imagenet_c.py`), and write them as PNG in ImageNet-C's flat layout under
   wnid folders (class k -> the k-th ImageNet wnid); the clean images go to a class-folder set.
3. Evaluate with `gpaco.robustness.evaluate_suite` (partial: 10 of 1000 classes, 7 of 15
   corruptions), the 10 logits padded to 1000.

What this shows: the suite's machinery end to end on real images, and how a tiny model's error
grows with severity. What it does not: anything about ImageNet-C numbers; the mCE here is over
7 corruptions and 10 classes, and the AlexNet-normalised mCE is meaningless for this data.

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
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.transforms import FMNIST_MEAN, FMNIST_STD
from gpaco.engine.schedule import warmup_cosine_lr
from gpaco.engine.schedule import set_lr
from gpaco.engine.param_groups import layer_decay_param_groups
from gpaco.models.vit import ce_vit, create_vit
from gpaco.robustness import evaluate_suite, imagenet_wnids, write_results

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


def train_tiny_vit(epochs: int, batch: int, seed: int) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    data = EmbeddedFashionMNISTLT(train=True)
    x = torch.from_numpy(data.data).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(FMNIST_MEAN).view(1, 3, 1, 1)) / torch.tensor(FMNIST_STD).view(1, 3, 1, 1)
    y = torch.tensor(data.targets)
    vit = create_vit("vit_micro_patch4_32", img_size=28, embed_dim=64, depth=4, num_heads=4,
                     drop_path_rate=0.1)
    model = ce_vit(vit, 10)
    opt = torch.optim.AdamW(layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.75),
                            lr=0.0)
    iters = (len(y) + batch - 1) // batch
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for i in range(iters):
            set_lr(opt, warmup_cosine_lr(epoch + i / iters, 2e-3, min_lr=1e-6, epochs=epochs,
                                         warmup_epochs=1))
            idx = order[i * batch:(i + 1) * batch]
            xb = x[idx]
            flip = torch.rand(len(idx)) < 0.5  # horizontal flips, the only augmentation
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    info = {"epochs": epochs, "steps": epochs * iters, "batch": batch, "train_images": len(y),
            "train_seconds": round(time.perf_counter() - start, 1), "last_loss": float(loss.detach())}
    return model.eval(), info


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
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results-robustness-demo"))
    args = parser.parse_args()
    model, info = train_tiny_vit(args.epochs, args.batch, args.seed)
    wrapped = PadTo1000(model)
    common = dict(partial=True, image_size=28, resize_size=28, mean=FMNIST_MEAN, std=FMNIST_STD,
                  batch_size=100)
    with tempfile.TemporaryDirectory() as tmp:
        write_sets(Path(tmp), args.per_class, args.seed)
        clean = evaluate_suite(wrapped, "imagenet-val", Path(tmp) / "clean", **common)
        c = evaluate_suite(wrapped, "imagenet-c", Path(tmp) / "c",
                           corruptions=list(SEVERITY), **common)
    write_results(clean, args.out)
    write_results(c, args.out)
    summary = {"training": info, "images_per_folder": 10 * args.per_class,
               "clean_top1_error": clean.summary["top1_error"],
               "corruption_errors": c.summary["corruption_errors"],
               "mce_unnormalized_over_7": c.summary["mce_unnormalized"],
               "severity_errors": {p.name: round(p.top1_error, 4) for p in c.parts}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "severity_errors"}, indent=2))
    print(c.to_markdown())


if __name__ == "__main__":
    main()
