"""Images per second of a ViT-B/16 training step on the CPU, fp32 and bf16 autocast.

Two steps, both with AdamW on MAE's layer-decay groups (decay 0.65, wd 0.05) and drop path 0.1:
- "ce": the CE baseline, one 224 px view per image, cross-entropy;
- "gpaco": the GPaCo ViT model, two views per image (2B images through the encoder), the
  PaCo loss with alpha 0.2, tau 0.2, smoothing 0.1 against a full 8192-key queue.
Random inputs (the step's cost does not depend on them); the first `--warmup` steps are
excluded; the median of the timed steps is reported.

  OMP_NUM_THREADS=2 python benchmarks/vit_cpu.py --batch 8 --steps 3 --out benchmarks/results-vit-cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gpaco.models.layer_decay import layer_decay_param_groups
from gpaco.losses.paco import PaCoLoss
from gpaco.models.vit import ce_vit, create_vit, gpaco_vit


def _model(kind: str) -> torch.nn.Module:
    vit = create_vit("vit_base_patch16_224", drop_path_rate=0.1)
    if kind == "ce":
        return ce_vit(vit, 1000)
    model = gpaco_vit(vit, 1000)
    # A full queue, as in steady-state training (random unit keys and labels).
    model.queue.enqueue(F.normalize(torch.randn(8192, 128), dim=1), torch.randint(0, 1000, (8192,)))
    return model


def _step_fn(kind: str, model: torch.nn.Module, batch: int, dtype: torch.dtype | None):
    opt = torch.optim.AdamW(layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.65),
                            lr=1e-4)
    criterion = PaCoLoss(1000, alpha=0.2, temperature=0.2, label_smoothing=0.1)
    views = [torch.randn(batch, 3, 224, 224) for _ in range(1 if kind == "ce" else 2)]
    labels = torch.randint(0, 1000, (batch,))

    def step() -> None:
        cast = (torch.autocast("cpu", dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
        with cast:
            if kind == "ce":
                loss = F.cross_entropy(model(views[0]), labels, label_smoothing=0.1)
            else:
                out = model.forward_train(views, labels)
                loss = criterion(out.features.float(), out.labels, out.center_logits.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure(kind: str, dtype_name: str, batch: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = _model(kind).train()
    dtype = {"fp32": None, "bf16": torch.bfloat16}[dtype_name]
    step = _step_fn(kind, model, batch, dtype)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    sec = statistics.median(times)
    images = batch * (1 if kind == "ce" else 2)
    return {"step": kind, "dtype": dtype_name, "batch_images": batch, "encoder_images": images,
            "median_step_s": round(sec, 3), "step_s": [round(t, 3) for t in times],
            "images_per_s": round(batch / sec, 3), "encoder_images_per_s": round(images / sec, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--kinds", default="ce,gpaco")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "cpu": platform.processor()
           or platform.machine(), "cpu_count": os.cpu_count(),
           "load_avg_at_start": os.getloadavg()}
    try:
        env["cpu_model"] = next(line.split(":", 1)[1].strip()
                                for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rows = []
    for kind in args.kinds.split(","):
        for dtype in args.dtypes.split(","):
            row = measure(kind, dtype, args.batch, args.steps, args.warmup)
            rows.append(row)
            print(json.dumps(row), flush=True)
    env["load_avg_at_end"] = os.getloadavg()
    report = {"env": env, "results": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(env))


if __name__ == "__main__":
    main()
