"""What evaluating every epoch costs the ImageNet-type recipes (issue 10, item 7).

Measures, on whatever device this runs on, the time per image of a training step of the
recipe's model (both views, forward + backward + SGD, PaCo's key encoder) and of an evaluation
forward, then projects the share of a run that per-epoch evaluation of the recipe's splits
takes: eval images x t_eval / (train images x t_train). Small images keep it cheap on a CPU;
the ratio of the two times is what matters, and it moves little with the resolution.

    python benchmarks/eval_cadence.py --recipe imagenet-lt-paco-r50 --size 64 --batch 16
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gpaco.tasks.classification import methods
from gpaco.config import core as C
from gpaco.tasks.classification.build import build_criterion
from gpaco.models import create_backbone

# Images per split in the papers' datasets (list files / folders): train, val, test.
SPLITS = {"imagenet_lt": (115_846, 20_000, 50_000), "inat2018": (437_513, 0, 24_426),
          "places_lt": (62_500, 0, 7_300), "image_folder": (1_281_167, 0, 50_000)}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="imagenet-lt-paco-r50")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--classes", type=int, default=1000)
    args = p.parse_args()
    cfg = C.load_config(args.recipe, overrides=[f"model.queue_size={4 * args.batch}"])
    backbone = create_backbone(cfg.model.backbone)
    options = {k: getattr(cfg.model, k) for k in methods.get_method(cfg.method).model_options}
    model = methods.build_model(cfg.method, backbone, args.classes, **options)
    criterion = build_criterion(cfg, args.classes, [10] * args.classes)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = [torch.randn(args.batch, 3, args.size, args.size) for _ in range(2)]
    y = torch.randint(0, args.classes, (args.batch,))

    def train_step() -> None:
        model.train()
        out = model.forward_train(x, y)
        loss = criterion(out.features, out.labels, out.center_logits)
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def eval_step() -> None:
        model.eval()
        model(x[0])

    t_train = _time(train_step, args.repeats) / args.batch
    t_eval = _time(eval_step, args.repeats) / args.batch
    n_train, n_val, n_test = SPLITS[cfg.data.dataset]
    share = (n_val + n_test) * t_eval / (n_train * t_train + (n_val + n_test) * t_eval)
    print(json.dumps({"recipe": args.recipe, "size": args.size, "batch": args.batch,
                      "train_s_per_image": t_train, "eval_s_per_image": t_eval,
                      "train_images": n_train, "eval_images": n_val + n_test,
                      "eval_share_of_run_percent": round(100 * share, 2)}))


if __name__ == "__main__":
    main()
