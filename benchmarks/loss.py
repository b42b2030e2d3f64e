"""Forward+backward time and peak memory of gpaco.losses.PaCoLoss vs a straightforward version.

The "masked" reference follows the authors' PaCo/LT/losses.py: it concatenates [center logits,
similarities] into one (A, C + M) matrix and multiplies it with full float masks. Both get the
same inputs; the table also shows |loss difference| as a correctness check.

Peak memory is the peak of bytes allocated *beyond the inputs* during one forward+backward:
- CUDA: torch.cuda.max_memory_allocated() minus the bytes allocated before the call (after
  torch.cuda.reset_peak_memory_stats()); this includes kernel workspaces.
- CPU: torch has no allocator statistics on CPU, so a TorchDispatchMode records every tensor
  storage that an ATen op returns (intermediates, tensors saved for backward, gradients) and a
  weakref finalizer on the storage subtracts it when it is freed. Views and in-place results
  share their input's storage and are not counted twice. Temporaries allocated *inside* a single
  kernel are invisible to it, so the CPU number is a lower bound of the live tensor bytes, and
  it does not include allocator caching or fragmentation.

Usage: python benchmarks/loss.py [--device cpu|cuda] [--repeats 5] [--cases inat,seg] [--json OUT]
       [--keep-freed-memory] [--cpu-time] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from gpaco.losses import log_prior, paco_loss

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Case:
    name: str
    num_anchors: int  # A
    num_classes: int  # C
    num_columns: int  # M
    dim: int
    alpha: float
    prior: bool


CASES = {
    # CIFAR-100-LT PaCo (the authors' recipe): anchors = 128 queries, [q; k; 1024-key queue], d 32.
    "cifar-paco": Case("cifar-paco", 128, 100, 1280, 32, 0.01, True),
    # CIFAR-100-LT GPaCo: anchors = both views (2 x 128), the same contrast set, d 128.
    "cifar-gpaco": Case("cifar-gpaco", 256, 100, 1280, 128, 0.01, True),
    # iNaturalist 2018, GPaCo-style anchors [q; k] of a local batch of 128 + an 8192-key queue.
    "inat": Case("inat", 256, 8142, 8448, 128, 0.05, True),
    # Segmentation: 8192 sampled pixels of one image are both anchors and contrast set (ADE20K).
    "seg": Case("seg", 8192, 150, 8192, 128, 0.01, False),
}
TEMPERATURE = 0.07
# --cpu-time: timed by the process's CPU time (a shared machine's waits left out)
CPU_TIME = False


def masked_paco(
    features: Tensor, labels: Tensor, center_logits: Tensor, *, alpha: float, prior: Tensor | None
) -> Tensor:
    """The authors' formulation (beta = gamma = 1): one (A, C + M) matrix and float masks."""
    num_anchors, num_classes = center_logits.shape
    sims = features[:num_anchors] @ features.T / TEMPERATURE
    center = center_logits if prior is None else center_logits + prior
    logits = torch.cat([center, sims], dim=1)
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    same = (labels[:num_anchors, None] == labels[None, :]).float()
    self_index = torch.arange(num_anchors, device=same.device)[:, None]
    not_self = torch.ones_like(same).scatter(1, self_index, 0)
    positives = same * not_self
    one_hot = F.one_hot(labels[:num_anchors], num_classes).float()
    pos_weight = torch.cat([one_hot, alpha * positives], dim=1)
    den_weight = torch.cat([torch.ones_like(one_hot), not_self], dim=1)
    exp_logits = torch.exp(logits) * den_weight
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True) + 1e-12)
    return -((pos_weight * log_prob).sum(1) / pos_weight.sum(1)).mean()


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages that ATen ops create while active (see module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        leaves = tree_flatten((args, kwargs))[0]
        inputs = {t.untyped_storage()._cdata for t in leaves if isinstance(t, Tensor)}
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in inputs or key in self.live:
                continue  # a view or in-place result: no new memory
            self.live[key] = storage.nbytes()
            self.current += storage.nbytes()
            weakref.finalize(storage, self._release, key)
        self.peak = max(self.peak, self.current)
        return out


def make_inputs(case: Case, device: torch.device, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(case.num_columns, case.dim, generator=gen), dim=1)
    labels = torch.randint(0, case.num_classes, (case.num_columns,), generator=gen)
    logits = torch.randn(case.num_anchors, case.num_classes, generator=gen)
    prior = None
    if case.prior:  # a long-tailed profile, 1000 down to 2 images per class
        counts = (1000 * torch.logspace(0, -2.7, case.num_classes)).long().clamp_min(2)
        prior = log_prior(counts).to(device)
    features = features.to(device, dtype).requires_grad_()
    logits = logits.to(device, dtype).requires_grad_()
    return features, labels.to(device), logits, prior


def step(fn: LossFn, features: Tensor, labels: Tensor, logits: Tensor) -> Tensor:
    """One forward + backward; returns the detached loss."""
    loss = fn(features, labels, logits)
    torch.autograd.grad(loss, (features, logits))
    return loss.detach()


def time_once_ms(fn: LossFn, inputs, device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        step(fn, *inputs)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    clock = time.process_time if CPU_TIME else time.perf_counter
    begin = clock()
    step(fn, *inputs)
    return 1000 * (clock() - begin)


def peak_bytes(fn: LossFn, inputs, device: torch.device) -> tuple[int, float]:
    """(peak bytes beyond the inputs during one forward+backward, loss value)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        loss = step(fn, *inputs)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device) - before, float(loss)
    with LiveTensorBytes() as tracker:
        loss = step(fn, *inputs)
    return tracker.peak, float(loss)


def run_case(
    case: Case, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int
) -> list[dict]:
    features, labels, logits, prior = make_inputs(case, device, dtype)
    inputs = (features, labels, logits)
    impls: dict[str, LossFn] = {
        "gpaco PaCoLoss": lambda f, y, c: paco_loss(
            f, y, c, alpha=case.alpha, temperature=TEMPERATURE, log_prior=prior
        ),
        "masked (authors')": lambda f, y, c: masked_paco(f, y, c, alpha=case.alpha, prior=prior),
    }
    memory = {}
    for impl, fn in impls.items():
        memory[impl] = peak_bytes(fn, inputs, device)
        for _ in range(warmup):
            step(fn, *inputs)
    # Interleaved, so that load from other processes affects both implementations alike.
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl, fn in impls.items():
            times[impl].append(time_once_ms(fn, inputs, device))
    # Speed-up over the authors' form: the median of the ratios of interleaved pairs, which a
    # load change during the run shifts less than the ratio of the medians.
    reference = times["masked (authors')"]
    return [
        dict(case=case.name, impl=impl, **{k: v for k, v in asdict(case).items() if k != "name"},
             median_ms=statistics.median(times[impl]), min_ms=min(times[impl]), repeats=repeats,
             speedup=statistics.median(r / t for r, t in zip(reference, times[impl])),
             peak_mib=memory[impl][0] / 2**20, loss=memory[impl][1])
        for impl in impls
    ]


def environment(device: torch.device) -> dict:
    env = dict(
        date=datetime.date.today().isoformat(),
        torch=torch.__version__,
        python=platform.python_version(),
        device=device.type,
        cpu=platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def markdown(rows: list[dict], env: dict) -> str:
    lines = [
        f"device={env['device']} {env.get('gpu', '')} torch={env['torch']} "
        f"threads={env['threads']} dtype={env['dtype']} "
        f"date={env['date']}",
        "",
        "| case | A | C | M | d | implementation | fwd+bwd ms (median) | min ms "
        "| x authors' | peak extra MiB | loss |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['num_anchors']} | {r['num_classes']} | {r['num_columns']} "
            f"| {r['dim']} "
            f"| {r['impl']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['speedup']:.2f} "
            f"| {r['peak_mib']:.1f} "
            f"| {r['loss']:.6f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {list(CASES)}")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="dtype of features and center logits")
    parser.add_argument("--json", metavar="OUT", help="also write the rows and environment here")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="gpaco's allocator setting of CPU runs (glibc keeps freed buffers)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="CPU: timed by the process's CPU time (all threads), not wall time; "
                             "one torch thread unless --threads says otherwise")
    parser.add_argument("--threads", type=int, help="torch threads (CPU)")
    args = parser.parse_args()
    if args.cpu_time:
        global CPU_TIME
        CPU_TIME = True
    if args.threads or args.cpu_time:
        torch.set_num_threads(args.threads or 1)
    if args.keep_freed_memory:
        from gpaco.train.cpu import keep_freed_memory

        keep_freed_memory()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    rows = []
    for name in args.cases.split(","):
        rows += run_case(CASES[name], device, dtype, args.warmup, args.repeats)
    env = environment(device) | {"dtype": args.dtype, "keep_freed_memory": args.keep_freed_memory,
                                 "clock": "process CPU time" if args.cpu_time else "wall"}
    print(markdown(rows, env))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"environment": env, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
