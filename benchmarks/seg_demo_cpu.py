"""Train a small segmenter on the embedded demo set on CPU: seconds per iteration and test mIoU
(the demo's held-out split, as `gpaco train` names it; before issue 22 this printed `val_*`).

The building blocks the `seg-default` recipe will wire (dataset, transforms, model, loss,
evaluation), in a plain loop: DeepLabV3+ with a random-init RegNetX-200MF encoder, 64 x 64
canvases, AdamW with poly decay, CE + 0.4 aux CE (+ per-pixel GPaCo with --method gpaco).

Usage: python benchmarks/seg_demo_cpu.py [--method ce|gpaco] [--iters 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from gpaco.data.segmentation import EmbeddedSegmentationLT, eval_transform, train_transform
from gpaco.losses.pixel_paco import PixelPaCoLoss
from gpaco.losses.segmentation import SegmentationLoss
from gpaco.models.segmentation import create_segmenter
from gpaco.tasks.segmentation.inference import evaluate, predict
from gpaco.tasks.segmentation.report import plot_iou_vs_frequency, plot_predictions, write_class_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("ce", "gpaco"), default="gpaco")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--encoder", default="tu-regnetx_002")
    parser.add_argument("--decoder-channels", type=int, default=32)
    parser.add_argument("--lr", type=float, default=6e-3)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write per-class CSV and PNGs here")
    parser.add_argument("--aug", choices=("mmseg", "flip"), default="mmseg",
                        help="mmseg: the full train_transform; flip: horizontal flip only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    transform = (train_transform((64, 64), (64, 64)) if args.aug == "mmseg"
                 else v2.Compose([v2.RandomHorizontalFlip(), eval_transform(None)]))
    train = EmbeddedSegmentationLT(transform=transform, seed=args.seed)
    test = EmbeddedSegmentationLT(train=False, transform=eval_transform(None), seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    model = create_segmenter("deeplabv3plus", args.encoder, train.num_classes,
                             decoder_channels=args.decoder_channels, aux_channels=32,
                             projection_dim=128 if args.method == "gpaco" else None)
    paco = PixelPaCoLoss(train.num_classes, alpha=args.alpha, seed=args.seed) \
        if args.method == "gpaco" else None
    criterion = SegmentationLoss(paco)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda i: (1 - i / args.iters) ** 0.9)

    step, begin, losses = 0, time.perf_counter(), []
    while step < args.iters:
        for images, masks in loader:
            model.train()
            out = model.forward_train(images)
            loss = criterion(out.logits, masks, out.aux_logits, out.embeddings)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step % 50 == 0:
                print(f"iter {step} loss {sum(losses[-50:]) / 50:.3f} "
                      f"{(time.perf_counter() - begin) / step:.3f} s/iter", flush=True)
            if step == args.iters:
                break
    train_seconds = time.perf_counter() - begin

    t0 = time.perf_counter()
    batches = DataLoader(test, batch_size=32)
    result, _ = evaluate(model, batches, test.num_classes)
    eval_seconds = time.perf_counter() - t0
    # Fit diagnostic: the first 128 training canvases, unaugmented.
    seen = EmbeddedSegmentationLT(transform=eval_transform(None), num_images=128, seed=args.seed)
    fit, _ = evaluate(model, DataLoader(seen, batch_size=32), seen.num_classes)
    if args.out:
        write_reports(args.out, model, train, test, result)
    print(json.dumps({
        "method": args.method, "iters": args.iters, "batch": args.batch, "threads": args.threads,
        "encoder": args.encoder, "aug": args.aug, "lr": args.lr, "train_seconds": round(train_seconds, 1),
        "seconds_per_iter": round(train_seconds / args.iters, 3),
        "eval_seconds": round(eval_seconds, 1), "test_miou": round(100 * result.miou, 2),
        "test_macc": round(100 * result.macc, 2), "test_aacc": round(100 * result.aacc, 2),
        "test_iou": [round(100 * v, 1) for v in result.iou],
        "train_miou": round(100 * fit.miou, 2),
    }))


def write_reports(out: Path, model, train, test, result) -> None:
    out.mkdir(parents=True, exist_ok=True)
    counts = train.pixel_counts()
    write_class_csv(out / "per_class_iou.csv", result, test.classes, counts)
    plot_iou_vs_frequency(out / "iou_vs_frequency.png", result, test.classes, counts)
    images = torch.stack([test[i][0] for i in range(4)])
    with torch.no_grad():
        preds = predict(model.eval(), images).argmax(1).numpy()
    plot_predictions(out / "predictions.png", test.data[:4], test.masks[:4], preds, test.classes)


if __name__ == "__main__":
    main()
