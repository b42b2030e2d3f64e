"""Training-step time of the seg-default demo with mmseg's decoder (the recipe's) vs smp's, in
one process, interleaved, so both see the same machine load: their ratio carries over to an idle
machine even where the absolute times do not.

Usage: python benchmarks/seg_demo_decoder_speed.py [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from gpaco.config import core as C
from gpaco.tasks.classification.build import build_optimizer
from gpaco.tasks.segmentation.runner import SegmentationTask, build_segmenter


def step_seconds(arch: str, steps: int, batches: list) -> float:
    cfg = C.load_config("seg-default", overrides=["train.device=cpu", f"model.arch={arch}"])
    torch.manual_seed(0)
    model = build_segmenter(cfg, 11)
    task = SegmentationTask()
    criterion = task.build_criterion(cfg, type("D", (), {"num_classes": 11})())
    optimizer = build_optimizer(cfg, model)
    start = time.perf_counter()
    for i in range(steps):
        images, masks = batches[i % len(batches)]
        out = model.forward_train(images)
        loss = criterion(out.logits, masks, out.aux_logits, out.embeddings)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = C.load_config("seg-default", overrides=["train.device=cpu"])
    data = SegmentationTask().build_data(cfg, torch.device("cpu"))
    batches = [b for _, b in zip(range(8), data.train_loader)]
    times: dict[str, list[float]] = {"deeplabv3plus": [], "smp-deeplabv3plus": []}
    for _ in range(args.rounds):
        for arch in times:
            times[arch].append(step_seconds(arch, args.steps, batches))
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps({"seconds_per_step": times, "best": best,
                      "mmseg_over_smp": round(best["deeplabv3plus"] / best["smp-deeplabv3plus"], 3),
                      "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
