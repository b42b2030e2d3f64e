"""Peak CPU memory and time of one forward + backward of the per-pixel GPaCo loss.

Setting of the authors' ADE20K runs: a 512 x 512 crop gives a 128 x 128 stride-4 feature map,
K = 8192 of its pixels are sampled per image, C = 150 classes, 128-d embeddings, 10 % void.
Two numbers per row:
- "live tensor peak": bytes of tensor storages created during the step (beyond the inputs),
  tracked op by op with benchmarks/loss.py's LiveTensorBytes (a lower bound: temporaries
  inside a kernel are invisible);
- "RSS rise": the process's peak resident set size after the step minus before it
  (getrusage ru_maxrss; includes allocator overhead, so closer to what a user sees).
Each row runs in a fresh process so that the RSS high-water marks do not mix.

Usage: python benchmarks/pixel_paco_memory.py [--images 1 2] [--samples 8192] [--classes 150]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(images: int, samples: int, classes: int, side: int, dim: int) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from loss import LiveTensorBytes  # the op-level CPU tracker of benchmarks/loss.py

    from gpaco.losses.pixel_paco import pixel_paco_loss

    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(images, dim, side, side, generator=gen).requires_grad_()
    logits = torch.randn(images, classes, side, side, generator=gen).requires_grad_()
    labels = torch.randint(0, classes, (images, 4 * side, 4 * side), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.1] = 255

    def step() -> float:
        loss = pixel_paco_loss(emb, logits, labels, alpha=0.01, num_samples=samples,
                               generator=torch.Generator().manual_seed(1))
        torch.autograd.grad(loss, (emb, logits))
        return float(loss)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    begin = time.perf_counter()
    value = step()
    seconds = time.perf_counter() - begin
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with LiveTensorBytes() as tracker:
        step()
    return {
        "images": images, "samples": samples, "classes": classes, "feature_map": f"{side}x{side}",
        "dim": dim, "loss": round(value, 6), "seconds": round(seconds, 2),
        "live_tensor_peak_mib": round(tracker.peak / 2**20, 1),
        "rss_rise_mib": round((rss_after - rss_before) / 1024, 1),
        "one_KxK_fp32_mib": round(samples * samples * 4 / 2**20, 1),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--side", type=int, default=128, help="feature map side (crop / 4)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.images[0], args.samples, args.classes, args.side, args.dim)))
        return
    for n in args.images:
        cmd = [sys.executable, __file__, "--child", "--images", str(n), "--samples",
               str(args.samples), "--classes", str(args.classes), "--side", str(args.side),
               "--dim", str(args.dim)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
