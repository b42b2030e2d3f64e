"""torchrun on the CPU (gloo, loopback): N processes train exactly like one process.

These runs use a deterministic view (views=[cifar_test] for both views), so that the test does
not depend on augmentation at all (each sample's augmentation is seeded by its global position
in the epoch, gpaco.data.seeded_samples, the same on any layout). Every other ingredient is
layout-independent: the shared data
permutation, ghost batch norm of the per-process batch, the global contrast set, the queue
gathered in rank order and the averaged batch-norm buffers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpaco import run as C
from gpaco.train import run_dir as rd
from gpaco import run as T
from gpaco.train import trainer
from gpaco.weights.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
LAUNCH_TIMEOUT = 150  # seconds; a hung collective must fail the test, not the suite


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """4 classes of 16x16 RGB PNGs: 16 training and 4 test images each."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("val", 4)):
        for c in range(4):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                pixels[..., c % 3] //= 4  # a weak class signal
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _tiny(root: Path, folder: Path, *extra: str) -> list[str]:
    """A few CPU seconds per run; ghost BN of 8 = the per-process batch of 2 processes.
    Channels-first: oneDNN's channels-last kernels sum a batch of 8 and one of 16 in different
    orders (1e-4 apart after six steps), which would hide a layout bug behind a loose tolerance."""
    return [f"data.root={root}", "data.dataset=image_folder", "data.batched_augment=false",
            "data.imb_factor=null",
            "data.image_size=16", "data.views=[cifar_test]", "data.test_transform=cifar_test",
            "model.backbone=resnet8", "model.ghost_bn=8",
            "train.batch_size=16", "train.max_steps_per_epoch=3", "train.eval_batch_size=8",
            "train.log_every=1", "train.device=cpu", "train.channels_last=false",
            "output.progress=none", "output.tensorboard=false", "output.plots=false",
            "schedule.epochs=2", "schedule.name=step", "schedule.warmup_epochs=0",
            "schedule.milestones=[]",
            "optim.lr=0.01",
            f"output.dir={folder}", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", GPACO_DIST_TIMEOUT="60",
               PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def _single_node(nproc: int) -> list[str]:
    return _torchrun(f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
                     f"--master_port={_free_port()}")


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _train_here(overrides: list[str]) -> dict:
    cfg = C.load_config("default", overrides=overrides)
    folder = Path(cfg.output.dir)
    rd.prepare(folder, resume=False, overwrite=True)
    return T.train(cfg, folder)


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=2e-5, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


CONTRASTIVE = ["model.dim=16", "model.queue_size=40", "loss.temperature=0.2"]
# The batch-norm settings the recipes use by default (ghost groups of one of the authors' GPUs,
# shuffle-BN for PaCo's key encoder), scaled down: ghost_bn=8 = the per-process batch here.
METHODS = {"paco": ["method=paco", "model.shuffle_bn=true", *CONTRASTIVE],
           "gpaco": ["method=gpaco", *CONTRASTIVE], "ce": ["method=ce"],
           "multitask": ["method=multitask", "loss.effective_number_beta=0.999", *CONTRASTIVE]}


@pytest.fixture(scope="module")
def two_process_runs(image_root, tmp_path_factory):
    """One torchrun launch of 2 processes: every method for 2 epochs, and PaCo for 1 epoch."""
    base = tmp_path_factory.mktemp("ddp")
    runs = [{"folder": str(base / m), "overrides": _tiny(image_root, base / m, *o)}
            for m, o in METHODS.items()]
    runs.append({"folder": str(base / "paco_e1"),
                 "overrides": _tiny(image_root, base / "paco_e1", *METHODS["paco"],
                                    "schedule.epochs=1")})
    runs.append({"folder": str(base / "paco_steps"),  # step checkpoints gather every rank's state
                 "overrides": _tiny(image_root, base / "paco_steps", *METHODS["paco"],
                                    "train.checkpoint_every_steps=2")})
    spec = base / "spec.json"
    spec.write_text(json.dumps(runs))
    proc = subprocess.run([*_single_node(2), str(WORKER), str(spec)], env=_env(),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    _check(proc)
    return base, proc


@pytest.mark.parametrize("method", list(METHODS))
def test_two_processes_equal_one_process_with_the_same_global_batch(
        method, two_process_runs, image_root, tmp_path):
    base, _ = two_process_runs
    one = _train_here(_tiny(image_root, tmp_path / method, *METHODS[method]))
    a = load_checkpoint(tmp_path / method / "last.pt")
    b = load_checkpoint(base / method / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    _assert_same_weights(a["model"], b["model"])
    assert not any(k.startswith("module.") for k in b["model"])  # saved unwrapped
    two = json.loads((base / method / "summary.json").read_text())
    assert one["last"]["top1"] == pytest.approx(two["last"]["top1"])  # sharded eval, reduced
    if method != "ce":
        # (b) the queue holds the same keys and labels in the same order (it wrapped around).
        assert int(a["model"]["queue.count"]) == 40
        assert torch.equal(a["model"]["queue.labels"], b["model"]["queue.labels"])
        assert torch.equal(a["model"]["queue.ptr"], b["model"]["queue.ptr"])
        torch.testing.assert_close(a["model"]["queue.keys"], b["model"]["queue.keys"],
                                   rtol=1e-4, atol=2e-5)


def test_step_checkpoints_under_two_processes_change_nothing(two_process_runs):
    base, _ = two_process_runs
    _assert_same_weights(load_checkpoint(base / "paco" / "last.pt")["model"],
                         load_checkpoint(base / "paco_steps" / "last.pt")["model"])


def test_only_rank_0_writes_and_logs(two_process_runs):
    base, proc = two_process_runs
    assert proc.stdout.count("training paco on image_folder") == 3  # paco, _e1, _steps: once each
    records = rd.read_metrics(base / "gpaco")
    assert [r["epoch"] for r in records] == [1, 2]
    leftovers = [p.name for p in (base / "gpaco").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_a_two_process_checkpoint_resumes_in_one_process(two_process_runs, image_root,
                                                          tmp_path):
    base, _ = two_process_runs
    folder = base / "paco_e1"
    ckpt = load_checkpoint(folder / "last.pt")
    assert ckpt["epoch"] == 1
    # After its warm-up epoch a 2-epoch run is in this state: make the file say so, since
    # --resume refuses a changed schedule (engine/resume_policy.py).
    ckpt["config"]["schedule"]["epochs"] = 2
    torch.save(ckpt, folder / "last.pt")
    cfg = C.load_config(config_file=str(folder / rd.CONFIG), overrides=["schedule.epochs=2"])
    T.train(cfg, folder, resume=True)
    reference = tmp_path / "ref"
    _train_here(_tiny(image_root, reference, *METHODS["paco"]))
    _assert_same_weights(load_checkpoint(reference / "last.pt")["model"],
                         load_checkpoint(folder / "last.pt")["model"])


def test_two_nodes_on_loopback_train_and_checkpoint(image_root, tmp_path):
    port = _free_port()
    folder = tmp_path / "run"
    cmd = ["-m", "gpaco", "train", "--overwrite",
           *_tiny(image_root, folder, *METHODS["gpaco"], "schedule.epochs=1")]
    procs = [subprocess.Popen(
        _torchrun("--nnodes=2", "--nproc_per_node=1", f"--node-rank={node}",
                  "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
                  "--rdzv-id=gpaco-test", *cmd),
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for node in (0, 1)]
    outs = [p.communicate(timeout=LAUNCH_TIMEOUT) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert sum(out.count("final (last epoch) accuracy") for out, _ in outs) == 1
    ckpt = load_checkpoint(folder / "last.pt")
    assert ckpt["epoch"] == 1
    assert (folder / "summary.json").is_file()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_pid(launcher: int, rank: int) -> int | None:
    for child in _children(launcher):
        try:
            env = (Path("/proc") / str(child) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return child
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_killing_a_rank_ends_the_job_and_keeps_the_last_good_checkpoint(image_root, tmp_path):
    folder = tmp_path / "run"
    cmd = [*_single_node(2), "-m", "gpaco", "train", "--overwrite",
           *_tiny(image_root, folder, *METHODS["paco"], "schedule.epochs=200",
                  "train.eval_every=1000")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not (folder / "last.pt").is_file():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        victim = _rank_pid(proc.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=90)  # torchrun's agent stops the survivor
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    errors = [line for line in err.splitlines() if line.startswith("gpaco: error:")]
    assert errors and "process 0 of 2" in errors[0], err[-3000:]
    ckpt = load_checkpoint(folder / "last.pt")  # loadable: the last good epoch
    assert 1 <= ckpt["epoch"] < 200
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
