"""Suite-wide: `train.threads=auto` sees an idle machine, so a run's numbers never depend on
what else the machine was doing at that moment (auto picks 1 thread beside a busy process,
and 1 and 2 threads sum floats in different orders). tests/engine/test_cpu.py fakes machines
itself."""

import pytest

from gpaco.engine import cpu


@pytest.fixture(autouse=True)
def idle_machine(request, monkeypatch):
    if request.module.__name__.rsplit(".", 1)[-1] != "test_cpu":
        monkeypatch.setattr(cpu, "machine_busy_cpus", lambda: 0.0)
