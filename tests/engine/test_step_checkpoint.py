"""Checkpoints inside an epoch: a kill between two of them resumes to the uninterrupted weights."""

from pathlib import Path

import pytest
import torch

from gpaco.cli import main
from gpaco.train import run_dir as rd
from gpaco import run as T
from gpaco.train import trainer
from gpaco.weights.checkpoint import load_checkpoint


def _killed_at_step(monkeypatch, call: int) -> None:
    """Make the `call`-th training step of the next run raise KeyboardInterrupt (Ctrl-C)."""
    original = trainer.build_step

    def build(*args, **kwargs):
        step, calls = original(*args, **kwargs), [0]

        def counted(views, labels):
            calls[0] += 1
            if calls[0] == call:
                raise KeyboardInterrupt
            return step(views, labels)

        counted.lays_out_inputs = step.lays_out_inputs
        return counted

    monkeypatch.setattr(trainer, "build_step", build)


def _assert_same_state(a_path: Path, b_path: Path) -> None:
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(pa["momentum_buffer"], pb["momentum_buffer"])
    assert "position" not in b  # the finished run's last.pt is an end-of-epoch file


CASES = {"batched": ["data.batched_augment=true"],
         "pil": ["data.batched_augment=false", "data.workers=0"],
         # an lr set before every optimiser step: resuming must go on from the step's lr
         "per_step_lr": ["schedule.name=warmup_cosine", "train.accum_iter=2"]}


@pytest.mark.parametrize("case", list(CASES))
def test_a_kill_inside_an_epoch_resumes_to_the_uninterrupted_weights(case, tmp_path, tiny_args,
                                                                      monkeypatch, capsys):
    args = [*tiny_args, *CASES[case], "epochs=2", "train.max_steps_per_epoch=5",
            "train.checkpoint_every_steps=2"]
    assert main(["train", *args, f"output.dir={tmp_path / 'full'}"]) == 0
    cut = tmp_path / "cut"
    _killed_at_step(monkeypatch, 9)  # epoch 2, step 4: its step-2 checkpoint is the last one
    assert main(["train", *args, f"output.dir={cut}"]) == 130
    ckpt = load_checkpoint(cut / rd.CHECKPOINT)
    assert ckpt["epoch"] == 1 and ckpt["position"]["steps"] == 2
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(cut)]) == 0
    assert "at epoch 2 step 3" in capsys.readouterr().out
    _assert_same_state(tmp_path / "full" / rd.CHECKPOINT, cut / rd.CHECKPOINT)
    full, resumed = rd.read_metrics(tmp_path / "full"), rd.read_metrics(cut)
    assert [r["epoch"] for r in resumed] == [1, 2]
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in full]
    assert resumed[-1]["test"] == full[-1]["test"]


@pytest.mark.slow
def test_loader_workers_do_not_change_what_a_run_learns(tmp_path, tiny_args):
    """Each sample is augmented under the seed of its position: 0 or 2 workers, same weights."""
    base = [*tiny_args, "data.batched_augment=false", "epochs=1", "train.threads=1"]
    for workers in (0, 2):
        assert main(["train", *base, f"data.workers={workers}",
                     f"output.dir={tmp_path / str(workers)}"]) == 0
    _assert_same_state(tmp_path / "0" / rd.CHECKPOINT, tmp_path / "2" / rd.CHECKPOINT)


def test_step_checkpoints_are_written_inside_the_epoch(tmp_path, tiny_args, monkeypatch):
    saved = []
    monkeypatch.setattr(trainer, "atomic_save", lambda state, path: saved.append(
        (state["epoch"], state.get("position", {}).get("steps"))) if path.name == "last.pt"
        else None)  # (best.pt: the embedded data's validation picks one too)
    T.train(_cfg(tiny_args, tmp_path, "epochs=1", "train.max_steps_per_epoch=5",
                 "train.checkpoint_every_steps=2"), tmp_path / "run")
    assert saved == [(0, 2), (0, 4), (1, None)]


def _cfg(tiny_args, tmp_path, *more):
    from gpaco import run as C

    return C.load_config(overrides=[*tiny_args, f"output.dir={tmp_path / 'run'}", *more])
