"""CPU threads and loader workers chosen from the machine, or as the user says."""

import os

import pytest
import torch

from gpaco.cli import main
from gpaco.train import cpu, machine_load


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A fake machine: `set(cores, load, quota=None, machine_cores=None)`."""
    def set_(cores: int, load: float, quota: str | None = None, machine_cores: int | None = None):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        monkeypatch.setattr(cpu, "machine_busy_cpus", lambda: load)
        monkeypatch.setattr(os, "cpu_count", lambda: machine_cores or cores)
        (tmp_path / "cpu.max").write_text(quota or "max 100000")
        monkeypatch.setattr(cpu, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    return set_


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_threads_leave_out_the_cores_others_keep_busy(machine):
    machine(2, 0.1)
    assert cpu.choose_threads("auto") == 2  # 2 idle cores
    machine(2, 1.0)
    assert cpu.choose_threads("auto") == 1  # one other busy process: 1 thread, never 2
    machine(2, 5.0)
    assert cpu.choose_threads("auto") == 1
    machine(4, 2.0, quota="200000 100000")  # a cgroup quota of 2 cores on 4 visible ones
    assert cpu.usable_cores() == 2
    machine(2, 3.0, machine_cores=16)  # load spread over a big machine: our share is 0.4
    assert cpu.choose_threads("auto") == 2
    assert cpu.choose_threads(3) == 3  # the user's number stands


def test_auto_workers_from_the_free_cores(machine):
    machine(2, 0.0)
    assert cpu.choose_workers("auto", on_gpu=False) == 0  # a worker would take a thread's core
    assert cpu.choose_workers("auto", on_gpu=False, loader=False) == 0
    machine(16, 0.0)
    assert cpu.choose_workers("auto", on_gpu=True) == 15  # all but the main process's core
    assert cpu.choose_workers("auto", on_gpu=False) == 8
    assert cpu.choose_threads("auto", workers=8) == 8
    assert cpu.choose_workers(5, on_gpu=False) == 5


def test_busy_cpus_come_from_proc_stat_not_from_finished_processes(monkeypatch, tmp_path):
    """Two samples of /proc/stat a quarter second apart: what is busy now, minus our own use."""
    stat = tmp_path / "stat"
    samples = iter([[100, 0, 0, 900, 0, 0, 0, 0], [100 + 25, 0, 0, 900 + 25, 0, 0, 0, 0]])

    def read_text():  # 25 busy and 25 idle ticks of 2 CPUs: one CPU busy
        return "cpu  " + " ".join(map(str, next(samples))) + "\ncpu0 ...\n"

    monkeypatch.setattr(machine_load, "PROC_STAT", type("P", (), {"read_text": staticmethod(read_text)}))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # a finished job's echo
    assert machine_load.machine_busy_cpus() == pytest.approx(1.0, abs=0.05)


class _Clock:
    """cpu.py's `time`: a wall clock and a process CPU clock the test moves, sleeps recorded."""

    def __init__(self) -> None:
        self.now, self.cpu, self.slept = 100.0, 5.0, []

    def monotonic(self) -> float:
        return self.now

    def process_time(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_first_sample_at_start_overlaps_the_wait_and_our_own_use_is_left_out(monkeypatch):
    """`start_sample` (gpaco train's first step) opens the window: a second later the choice
    waits no more, and the CPU time this process spent building the run is not another job's;
    a first sample older than MAX_FIRST_SAMPLE_AGE is dropped for a fresh quarter second."""
    ticks = iter([[100, 0, 0, 900, 0, 0, 0, 0], [200, 0, 0, 900, 0, 0, 0, 0],  # both CPUs busy
                  [250, 0, 0, 900, 0, 0, 0, 0],  # the stale first sample, never used
                  [300, 0, 0, 1000, 0, 0, 0, 0], [325, 0, 0, 1025, 0, 0, 0, 0]])
    monkeypatch.setattr(machine_load, "PROC_STAT", type("P", (), {"read_text": staticmethod(
        lambda: "cpu  " + " ".join(map(str, next(ticks))) + "\n")}))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    clock = _Clock()
    monkeypatch.setattr(machine_load, "time", clock)
    machine_load.start_sample()
    clock.now += 1.0
    clock.cpu += 1.0  # building the run kept one CPU busy: ours
    assert machine_load.machine_busy_cpus() == pytest.approx(1.0)
    assert clock.slept == [0.0]
    machine_load.start_sample()
    clock.now += machine_load.MAX_FIRST_SAMPLE_AGE + 1
    assert machine_load.machine_busy_cpus() == pytest.approx(1.0)  # the fresh window: 25 of 50 ticks
    assert clock.slept == [0.0, machine_load.SAMPLE_SECONDS]


def test_train_threads_sets_torch_and_is_printed(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "epochs=1", "train.threads=1",
                 f"output.dir={tmp_path / 'run'}"]) == 0
    assert "on cpu (1 CPU thread: train.threads=1;" in capsys.readouterr().out
    assert torch.get_num_threads() == 1


def test_a_step_interval_no_epoch_reaches_is_refused(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "train.checkpoint_every_steps=3",
                 f"output.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "train.checkpoint_every_steps=3 but an epoch has 3 steps" in err
    assert not (tmp_path / "run").exists()


def test_a_run_samples_the_machine_once_for_threads_and_workers(machine, monkeypatch, tmp_path,
                                                                 tiny_args, capsys):
    """`auto` threads and `auto` loader workers come from one quarter-second sample, and the
    loaders get the resolved number (config.yaml keeps the thread count, workers `auto`)."""
    machine(2, 0.0)
    samples = []
    monkeypatch.setattr(cpu, "machine_busy_cpus", lambda: samples.append(1) or 0.0)
    run = tmp_path / "run"
    assert main(["train", *tiny_args, "epochs=1", "data.batched_augment=false",
                 "train.threads=auto", "data.workers=auto", f"output.dir={run}"]) == 0
    assert len(samples) == 1
    assert "(2 CPU threads: train.threads=auto: 2 of 2 usable cores free now" in (
        capsys.readouterr().out)
    saved = (run / "config.yaml").read_text()
    assert "workers: auto" in saved and "threads: 2" in saved


def test_freed_memory_is_kept_for_reuse_on_glibc_only(monkeypatch):
    """glibc takes the mmap and trim thresholds (mallopt returns 1); elsewhere nothing is set."""
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert cpu.keep_freed_memory() is True
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert cpu.keep_freed_memory() is False


def test_a_cpu_run_keeps_freed_memory(monkeypatch, tmp_path, tiny_args):
    from gpaco.train import trainer

    calls = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: calls.append(1) or True)
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={tmp_path / 'run'}"]) == 0
    assert calls == [1]


def test_auto_threads_follow_omp_num_threads(machine, monkeypatch, tmp_path, tiny_args, capsys):
    """`OMP_NUM_THREADS=1 gpaco` runs on one thread, as torch alone would; a number given as
    train.threads still wins; nonsense in the variable is ignored."""
    machine(2, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu.choose_threads("auto") == 1
    assert cpu.choose_threads(2) == 2
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={tmp_path / 'run'}"]) == 0
    assert "on cpu (1 CPU thread: train.threads=auto: OMP_NUM_THREADS=1;" in capsys.readouterr().out
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert cpu.choose_threads("auto") == 2


def test_torchrun_processes_split_the_cores_without_sampling(machine, monkeypatch):
    """Processes that start together would see each other's start-up as load: 4 cores and 2
    local processes give each 2, whatever /proc/stat says."""
    machine(4, 0.0)

    def no_sample():
        raise AssertionError("sampled the machine under torchrun")

    monkeypatch.setattr(cpu, "machine_busy_cpus", no_sample)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cpu.free_cores() == 2
    assert cpu.choose_threads("auto") == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert cpu.choose_threads("auto") == 1


def test_auto_workers_feeding_gpus_are_the_authors_16_per_machine(machine, monkeypatch):
    machine(64, 0.0)
    assert cpu.choose_workers("auto", on_gpu=True) == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # 4 GPUs: 16 cores and 4 loaders each
    assert cpu.choose_workers("auto", on_gpu=True) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert cpu.choose_workers("auto", on_gpu=True) == 1


def test_a_resume_and_a_rerun_keep_the_thread_count_auto_chose(machine, tmp_path, tiny_args,
                                                               capsys, train_until_killed):
    """1 and 2 threads sum floats in different orders: a run resumed beside a busy process,
    or repeated from its config.yaml, takes the count it started with, not a new `auto`."""
    from gpaco import run as C
    from gpaco.train import run_dir as rd
    from gpaco.weights.checkpoint import load_checkpoint

    machine(2, 0.0)
    args = [*tiny_args, "epochs=2", "train.threads=auto"]
    assert main(["train", *args, f"output.dir={tmp_path / 'full'}"]) == 0
    cut = tmp_path / "cut"
    train_until_killed(C.load_config(overrides=[*args, f"output.dir={cut}"]), 1)
    machine(2, 1.0)  # a busy process appears: auto would now choose 1 thread
    capsys.readouterr()
    assert main(["train", "--resume", str(cut)]) == 0
    assert "(2 CPU threads: train.threads=2;" in capsys.readouterr().out
    full, resumed = (load_checkpoint(p / rd.CHECKPOINT)["model"] for p in (tmp_path / "full", cut))
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    again = tmp_path / "again"
    assert main(["train", "--config", str(tmp_path / "full" / rd.CONFIG),
                 f"output.dir={again}"]) == 0
    assert "(2 CPU threads: train.threads=2;" in capsys.readouterr().out
    rerun = load_checkpoint(again / rd.CHECKPOINT)["model"]
    assert all(torch.equal(full[k], rerun[k]) for k in full)
