"""Suite-wide: `train.threads=auto` sees an idle machine, so a run's numbers never depend on
what else the machine was doing at that moment (auto picks 1 thread beside a busy process,
and 1 and 2 threads sum floats in different orders). tests/engine/test_cpu.py fakes machines
itself."""

import sys
from pathlib import Path

import pytest

from gpaco.train import cpu

# The writers of fake dataset files and weights layouts, for tests in any folder.
for _folder in ("data", "interop"):
    if str(Path(__file__).parent / _folder) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent / _folder))


@pytest.fixture(autouse=True)
def idle_machine(request, monkeypatch):
    # A shell's OMP_NUM_THREADS or torchrun's LOCAL_WORLD_SIZE would decide `auto` too.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    if request.module.__name__.rsplit(".", 1)[-1] != "test_cpu":
        monkeypatch.setattr(cpu, "machine_busy_cpus", lambda: 0.0)


@pytest.fixture
def train_until_killed(monkeypatch):
    """`train_until_killed(cfg, epoch)`: train `cfg` and stop it with Ctrl-C as `epoch` (0-based)
    begins, as a user or a cluster would; the trainer is left unpatched for the resume."""
    from pathlib import Path

    from gpaco import run as T

    from gpaco.train import trainer

    original = trainer._run_epoch

    def run(cfg, epoch: int) -> None:
        def killed(run_, e):
            if e == epoch:
                raise KeyboardInterrupt
            return original(run_, e)

        monkeypatch.setattr(trainer, "_run_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            T.train(cfg, Path(cfg.output.dir))
        monkeypatch.setattr(trainer, "_run_epoch", original)

    return run
