"""CPU threads and loader workers: the user's numbers, or ones chosen from the machine (`auto`).

Why `auto` does not simply take every core: PyTorch's intra-op threads spin while they wait for
each other, so when another busy process holds one of the cores, a 2-thread run on 2 cores
waits for the descheduled thread at every small op. Measured on 2 shared cores
(benchmarks/cpu_speed.py): the default run's first 2 epochs took 4.5 to 7.6 times longer with
2 threads than with 1. So `auto` counts the cores this process may use (affinity, cgroup CPU quota) and
leaves out the ones other processes keep busy now (gpaco.train.machine_load, pro rata to those
cores).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import platform
from pathlib import Path
from typing import Callable

import torch

from gpaco import distributed as gdist
from gpaco.train.machine_load import machine_busy_cpus

MAX_AUTO_WORKERS = 8  # training on the CPU: beyond this, loader processes mostly cost memory
# Feeding a GPU: the authors' 16 loader processes per machine (`-j 16`, split over its GPUs).
MAX_AUTO_GPU_WORKERS = 16
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max ..."


def _cgroup_cpus() -> float | None:
    """The cgroup v2 CPU quota in cores (`max` or no file: None)."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def usable_cores() -> int:
    """The cores this process may run on: its affinity, capped by the cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def busy_cores(cores: int) -> int:
    """How many of our `cores` other processes keep busy: the machine's busy CPUs scaled to
    our share of the machine, rounded to whole cores (half a core busy counts as free)."""
    share = machine_busy_cpus() * cores / (os.cpu_count() or cores)
    return min(cores, int(share + 0.5))


def free_cores() -> int:
    """This process's share of the usable cores no other process keeps busy (at least 1).

    Under torchrun the processes of one machine split its cores evenly, without a sample: they
    start together, so each would count the others' start-up as another job's load."""
    cores, local = usable_cores(), gdist.local_world_size()
    if local > 1:
        return max(1, cores // local)
    return max(1, cores - busy_cores(cores))


def env_threads() -> int | None:
    """OMP_NUM_THREADS, when set to a positive number (by the user, or by torchrun: 1)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def choose_workers(setting: int | str, *, on_gpu: bool, loader: bool = True,
                   free: Callable[[], int] = free_cores) -> int:
    """`data.workers`: a number as given; `auto`: 0 without a DataLoader (batched augmentation);
    feeding a GPU, every free core but the main process's (at most 16 per machine, as the
    authors' runs had, split over its torchrun processes); training on the CPU, the
    workers share the free cores with the training threads: none on 2 cores or fewer (a worker
    would take the core of the second thread), else half of them (at most 8)."""
    if setting != "auto":
        return int(setting)
    if not loader:
        return 0
    cores = free()
    if on_gpu:
        return min(max(1, MAX_AUTO_GPU_WORKERS // gdist.local_world_size()), max(0, cores - 1))
    return 0 if cores <= 2 else min(MAX_AUTO_WORKERS, cores // 2)


def choose_threads(setting: int | str, workers: int = 0,
                   free: Callable[[], int] = free_cores) -> int:
    """`train.threads`: a number as given; `auto`: OMP_NUM_THREADS if set (what torch itself
    would use), else the free cores the loader workers leave."""
    if setting != "auto":
        return int(setting)
    return env_threads() or max(1, free() - workers)


def apply_threads_and_workers(threads: int | str, workers: int | str, *, on_gpu: bool,
                              loader: bool) -> tuple[int, int, str]:
    """A run's (threads, workers, why that thread count) from `train.threads` and
    `data.workers`, from at most one machine sample (each sample costs a quarter second, and
    two could see different machines); sets torch's intra-op threads."""
    free = functools.cache(free_cores)
    workers_n = choose_workers(workers, on_gpu=on_gpu, loader=loader, free=free)
    threads_n = choose_threads(threads, workers_n, free=free)
    torch.set_num_threads(threads_n)
    return threads_n, workers_n, _thread_reason(threads, threads_n, workers_n, free)


def _thread_reason(setting: int | str, chosen: int, workers: int,
                   free: Callable[[], int]) -> str:
    """Why the run has `chosen` threads, in words (printed at the start of a run)."""
    if setting != "auto":
        return f"train.threads={setting}"
    if env_threads():
        return f"train.threads=auto: OMP_NUM_THREADS={env_threads()}"
    cores = usable_cores()
    loaders = f", {workers} for loader workers" if workers else ""
    return (f"train.threads=auto: {free()} of {cores} usable cores free now{loaders}")


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64 bits.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed tensor buffers for reuse instead of unmapping them;
    False (and nothing done) off glibc.

    Why: a CPU training step frees and allocates the same activation buffers every step. glibc
    serves buffers above its mmap threshold (128 KiB at start) with fresh mappings, so each step
    faults in and zeroes new pages: about 3 s of the default run's system time. Its dynamic
    threshold rises only once a large buffer is freed (the first evaluation), which is why the
    epochs after an evaluation ran ~15 % faster. Setting the threshold (and the trim threshold,
    2x as glibc's own rule does) at the start gives every epoch that speed.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))
