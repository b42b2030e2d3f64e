"""How busy the machine is: other processes' CPUs now, from two /proc/stat samples.

Kept free of torch so that the `gpaco` command can take the first sample before its imports
(`start_sample`, ~3 s of them): the quarter second `auto` threads needs then costs no wait.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
SAMPLE_SECONDS = 0.25
# A first sample older than this is dropped: its window would count jobs that have ended since.
MAX_FIRST_SAMPLE_AGE = 5.0
Sample = tuple[float, tuple[float, float], float]  # (when, machine ticks, own CPU s)
_first_sample: Sample | None = None


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat."""
    try:
        fields = [float(v) for v in PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _sample() -> Sample | None:
    """Now, the machine's ticks and this process's CPU time; None without /proc/stat."""
    ticks = _cpu_times()
    return None if ticks is None else (time.monotonic(), ticks, time.process_time())


def start_sample() -> None:
    """Take the first /proc/stat sample of `machine_busy_cpus` now (the `gpaco` command does,
    before its imports): the choice then waits only for what is left of the quarter second,
    usually nothing."""
    global _first_sample
    _first_sample = _sample()


def _take_first_sample() -> Sample | None:
    """The sample `start_sample` took, once, if it is recent enough; else one taken now."""
    global _first_sample
    first, _first_sample = _first_sample, None
    if first is not None and time.monotonic() - first[0] <= MAX_FIRST_SAMPLE_AGE:
        return first
    return _sample()


def machine_busy_cpus() -> float:
    """How many CPUs of the machine other processes keep busy right now.

    The machine's busy time over at least a quarter second of /proc/stat (from `start_sample`
    when it was called, so the wait overlaps start-up work), minus this process's own CPU time
    over the same window. Processes that just ended do not count, as they do in the 1-minute
    load average (a run started right after another would otherwise see one core busy).
    Without /proc/stat: the load average."""
    first = _take_first_sample()
    if first is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0
    since, before, own = first
    time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - since)))
    after = _cpu_times()
    elapsed = time.monotonic() - since
    own = time.process_time() - own
    if after is None or after[1] <= before[1]:
        return 0.0
    cpus = os.cpu_count() or 1
    busy = (after[0] - before[0]) / (after[1] - before[1]) * cpus
    return max(0.0, busy - own / elapsed)
