"""--version, SIGTERM like Ctrl-C, a closed pipe: what a shell user runs into."""

import os
import signal
import subprocess
import sys
import time

import pytest

import gpaco
from gpaco.cli import main

ENTRY = ("import atexit, sys; atexit.register(print, 'atexit ran'); "
         "sys.argv = ['gpaco', *sys.argv[1:]]; from gpaco.__main__ import entry; entry()")


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"gpaco {gpaco.__version__}"


def test_a_closed_pipe_is_not_a_traceback():
    proc = subprocess.run(f"{sys.executable} -m gpaco recipes | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.startswith("recipe") and proc.stderr == ""  # the header line


def _entry(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True,
                          timeout=300)


def test_the_command_skips_only_the_teardown(capsys):
    """The command leaves by os._exit after main: main's exit code, atexit handlers run, every
    line of a long output flushed (the same lines main prints in-process)."""
    main(["recipes"])
    listed = capsys.readouterr().out
    proc = _entry("recipes")
    assert proc.returncode == 0 and proc.stdout == listed + "atexit ran\n"
    proc = _entry("trian")
    assert proc.returncode == 2 and proc.stderr.startswith("gpaco: error: ")
    assert proc.stdout == "atexit ran\n"
    proc = _entry("--version")  # argparse's SystemExit
    assert proc.returncode == 0 and proc.stdout == f"gpaco {gpaco.__version__}\natexit ran\n"


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_keeps_the_checkpoint(tmp_path, tiny_args):
    run = tmp_path / "run"
    # a step schedule without milestones: its lr does not depend on the epoch count,
    # so the resume below may stop it at epoch 2 (engine/resume_policy.py)
    cmd = [sys.executable, "-m", "gpaco", "train", *tiny_args, "epochs=500", "warmup_epochs=0",
           "schedule.name=step", "schedule.milestones=[]",
           f"output.dir={run}", "output.plots=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.monotonic() + 240
    while not (run / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (run / "last.pt").exists(), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert err.strip().splitlines() == [
        f"gpaco: terminated (SIGTERM); {run / 'last.pt'} is kept: continue with --resume {run}"]
    # and it resumes from there
    assert main(["train", "--resume", str(run), "epochs=2"]) == 0
