"""Why CE + GPaCo trails CE on the embedded segmentation demo: measurements on its training
canvases (never the test split).

1. What the per-pixel GPaCo term sees per image: stride-4 pixels, how many are background,
   void (ignored) and item pixels, and how many same-class positives an item anchor has.
2. How strongly each term pulls on the fused decoder feature F: the norm of d(term)/dF for CE,
   aux CE and GPaCo on the same batches, at the recipe's init (and after `--steps` CE+GPaCo
   steps at the recipe's lr), and the terms' values.
3. With `--checkpoints RUN/last.pt ...` (finished CE and GPaCo runs): the same terms on those
   weights and each model's mIoU on those *training* batches (is GPaCo's deficit a fitting one?).

Usage: python benchmarks/seg_demo_diagnose.py [--batches 8] [--steps 0] [--checkpoints A B]
       [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from gpaco.config import core as C
from gpaco.tasks.classification.build import resolve_device
from gpaco.tasks.segmentation.runner import SegmentationTask, build_segmenter
from gpaco.losses.pixel_paco import downsample_labels


def composition(loader, batches: int, num_classes: int) -> dict[str, float]:
    """Per stride-4 image: pixel counts by kind and positives per item anchor."""
    stats: dict[str, list[float]] = {"pixels": [], "background": [], "void": [], "items": [],
                                     "positives_per_item_anchor": [],
                                     "item_classes_per_image": []}
    for i, (_, masks) in enumerate(loader):
        if i == batches:
            break
        small = downsample_labels(masks, (masks.shape[-2] // 4, masks.shape[-1] // 4))
        for m in small:
            flat = m.reshape(-1)
            void = (flat < 0) | (flat >= num_classes)
            items = ~void & (flat > 0)
            stats["pixels"].append(flat.numel())
            stats["background"].append(int((flat == 0).sum()))
            stats["void"].append(int(void.sum()))
            stats["items"].append(int(items.sum()))
            labels = flat[items]
            classes = torch.unique(labels)
            stats["item_classes_per_image"].append(len(classes))
            for c in classes:
                n = int((labels == c).sum())
                stats["positives_per_item_anchor"].extend([n - 1] * n)
    return {k: round(statistics.mean(v), 2) for k, v in stats.items() if v}


def term_gradients(model, criterion, images, masks) -> dict[str, float]:
    """|d term / d F| (Frobenius, per image) and the term's value, for each loss term."""
    model.train()
    stages = list(model.encoder(images))
    fused = model.decoder(stages)
    fused.retain_grad()
    logits = model.classifier(model.dropout(fused))
    embeddings = model.projection(fused)
    aux = model.aux_head(stages[-2])
    parts = criterion.parts(logits, masks, aux, embeddings)
    out = {}
    for name, value in parts.items():
        if name == "aux":  # the aux head sits on the encoder, not on F
            out["aux_value"] = round(float(value.detach()), 4)
            continue
        grad, = torch.autograd.grad(value, fused, retain_graph=True)
        out[f"{name}_value"] = round(float(value.detach()), 4)
        out[f"{name}_grad_F"] = float(grad.norm() / len(images))
    out["paco_over_ce_grad"] = round(out["paco_grad_F"] / out["ce_grad_F"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--steps", type=int, nargs="+", default=[0])
    parser.add_argument("--checkpoints", nargs="*", default=[])
    args, overrides = parser.parse_known_args()
    torch.manual_seed(0)
    cfg = C.load_config("seg-default", overrides=["train.device=cpu", *overrides])
    device = resolve_device("cpu")
    task = SegmentationTask()
    data = task.build_data(cfg, device)
    print(json.dumps({"stride4_per_image": composition(data.train_loader, args.batches,
                                                        data.num_classes)}))
    model = build_segmenter(cfg, data.num_classes)
    criterion = task.build_criterion(cfg, data)
    from gpaco.tasks.classification.build import build_optimizer
    optimizer = build_optimizer(cfg, model)
    batches = [b for _, b in zip(range(args.batches), data.train_loader)]
    done = 0
    for target in args.steps:
        while done < target:  # train with the recipe's lr (no schedule) between measurements
            for images, masks in data.train_loader:
                if done == target:
                    break
                out = model.forward_train(images)
                loss = criterion(out.logits, masks, out.aux_logits, out.embeddings)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
        print(json.dumps({"after_steps": done, **measure(model, criterion, batches)}), flush=True)
    for path in args.checkpoints:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"],
                              strict=False)  # a CE run has no projection: keep the random one
        train_miou = evaluate(model, batches, data.num_classes)
        print(json.dumps({"checkpoint": path, "train_miou": round(train_miou, 2),
                          **measure(model, criterion, batches)}), flush=True)


def measure(model, criterion, batches) -> dict[str, float]:
    rows = [term_gradients(model, criterion, x, y) for x, y in batches]
    return {k: round(statistics.mean(r[k] for r in rows), 4) for k in rows[0]}


@torch.no_grad()
def evaluate(model, batches, num_classes: int) -> float:
    """mIoU (%) of the model on the measured training batches, whole-image argmax."""
    from gpaco.tasks.segmentation.metrics import ConfusionMatrix

    model.eval()
    matrix = ConfusionMatrix(num_classes)
    for images, masks in batches:
        matrix.update(model(images).argmax(1), masks)
    model.train()
    return 100 * float(matrix.compute().miou)


if __name__ == "__main__":
    main()
