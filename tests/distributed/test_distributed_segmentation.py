"""torchrun on the CPU (gloo): a segmentation run (per-pixel GPaCo) trains in 2
processes, and its evaluation, each rank on a strided shard with the confusion matrices summed,
equals a 1-process evaluation of the same checkpoint."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from gpaco.train import run_dir as rd
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.run import evaluate_run_checkpoint

from test_distributed_training import LAUNCH_TIMEOUT, WORKER, _check, _env, _single_node


@pytest.mark.slow
def test_two_process_segmentation_evaluation_sums_the_shards(tmp_path) -> None:
    folder = tmp_path / "seg"
    overrides = ["schedule.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=8",
                 "loss.num_samples=256", "train.device=cpu",
                 "output.progress=none", "output.tensorboard=false", "output.plots=false",
                 f"output.dir={folder}"]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"folder": str(folder), "recipe": "seg-default",
                                 "overrides": overrides}]))
    proc = subprocess.run([*_single_node(2), str(WORKER), str(spec)], env=_env(),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    _check(proc)
    summary = json.loads((folder / rd.SUMMARY).read_text())
    assert load_checkpoint(folder / rd.CHECKPOINT)["epoch"] == 1
    line = evaluate_run_checkpoint(str(folder / rd.CHECKPOINT))
    miou = float(re.search(r"mIoU ([\d.]+)%", line).group(1))
    assert miou == pytest.approx(summary["last"]["miou"], abs=0.006)  # printed to 2 decimals
    assert "(128 images)" in line
