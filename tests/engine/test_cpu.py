"""CPU threads and loader workers chosen from the machine, or as the user says."""

import os

import pytest
import torch

from gpaco.cli import main
from gpaco.train import cpu


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

    monkeypatch.setattr(cpu, "PROC_STAT", type("P", (), {"read_text": staticmethod(read_text)}))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # a finished job's echo
    assert cpu.machine_busy_cpus() == pytest.approx(1.0, abs=0.05)


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
