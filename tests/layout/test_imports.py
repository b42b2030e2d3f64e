"""What a command's start pays for: heavy modules load only when used, and the core install
(pyproject's `dependencies`, no extras) runs the CLI and the default job."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Extras only (pyproject's optional-dependencies): a plain `pip install gpaco` lacks them.
EXTRAS = ("timm", "segmentation_models_pytorch", "torchmetrics", "imgviz")
# Core, but slow to import and needed by few commands.
HEAVY = ("scipy", "matplotlib", "tensorboard", "torch.utils.tensorboard") + EXTRAS


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    blocker = f"import sys\nfor m in {EXTRAS!r}:\n    sys.modules[m] = None\n"
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_importing_the_cli_loads_no_heavy_module(tmp_path):
    out = _run(f"""
        import gpaco.cli, gpaco.run
        print(sorted(m for m in {HEAVY!r} if sys.modules.get(m) is not None))
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_default_job_runs_on_the_core_install(tmp_path):
    out = _run("""
        from gpaco.cli import main
        raise SystemExit(main(["schedule.epochs=1", "train.max_steps_per_epoch=2",
                               "train.threads=1"]))
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "final (last epoch) accuracy" in out.stdout
