"""What a checkpoint file must say before gpaco uses it, and what --resume may change."""

import json
import errno
import os

import pytest
import torch

from gpaco.cli import main
from gpaco import run as C
from gpaco.train import run_dir as rd
from gpaco.weights.checkpoint import FORMAT_KEY, FORMAT_VERSION, load_checkpoint


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_args_for_module):
    """A two-epoch tiny run (copied by the tests that change it)."""
    folder = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", *tiny_args_for_module, "epochs=2", f"output.dir={folder}"]) == 0
    return folder


def _copy(run, tmp_path):
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_checkpoints_carry_the_format_version(finished_run):
    assert load_checkpoint(finished_run / rd.CHECKPOINT)[FORMAT_KEY] == FORMAT_VERSION


def test_a_newer_format_is_refused_and_an_older_file_without_one_loads(finished_run, tmp_path,
                                                                       cli_error):
    ckpt = load_checkpoint(finished_run / rd.CHECKPOINT)
    ckpt[FORMAT_KEY] = FORMAT_VERSION + 1
    torch.save(ckpt, tmp_path / "newer.pt")
    line = cli_error("eval", "--checkpoint", str(tmp_path / "newer.pt"))
    assert f"format {FORMAT_VERSION + 1}" in line and "upgrade gpaco" in line
    del ckpt[FORMAT_KEY]  # what gpaco wrote before the entry existed
    torch.save(ckpt, tmp_path / "older.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "older.pt")]) == 0


def test_a_checkpoint_without_config_is_one_line(finished_run, tmp_path, cli_error):
    run = _copy(finished_run, tmp_path)
    ckpt = load_checkpoint(run / rd.CHECKPOINT)
    del ckpt["config"]
    torch.save(ckpt, run / rd.CHECKPOINT)
    assert "holds no run config" in cli_error("eval", "--checkpoint", str(run / rd.CHECKPOINT))
    assert "holds no run config" in cli_error("train", "--resume", str(run))


@pytest.mark.parametrize("change", [["epochs=3"], ["epochs=3", "schedule.warmup_epochs=0"],
                                    ["epochs=3", "optim.lr=0.2"], ["epochs=3", "schedule.name=step", "schedule.milestones=[1]"],
                                    ["train.batch_size=64"]])
def test_resume_refuses_a_changed_schedule(finished_run, tmp_path, change, cli_error):
    # the run's cosine schedule: a third epoch, or another warm-up / lr / schedule for it,
    # would run at an lr the original schedule never gives; the batch size fixes the order
    run = _copy(finished_run, tmp_path)
    before = (run / rd.CHECKPOINT).read_bytes()
    line = cli_error("train", "--resume", str(run), *change)
    assert "--resume continues the run's own schedule" in line
    assert all(c.split("=")[0].split(".")[-1] in line for c in change)
    assert "model.pretrained=" in line
    assert (run / rd.CHECKPOINT).read_bytes() == before


def test_a_finished_run_refuses_changes_that_would_only_rewrite_its_record(finished_run,
                                                                           tmp_path, cli_error):
    # `--resume RUN optim.lr=0.5` on a finished run rewrote config.yaml (and `gpaco report`)
    # to an lr that never ran
    run = _copy(finished_run, tmp_path)
    before = (run / rd.CONFIG).read_text()
    for change in (["optim.lr=0.5"], ["train.eval_every=1"]):
        line = cli_error("train", "--resume", str(run), *change)
        assert "finished run" in line and change[0].split("=")[0] in line
        assert (run / rd.CONFIG).read_text() == before
    assert main(["train", "--resume", str(run), f"data.root={tmp_path}"]) == 0  # data moved


def test_resume_accepts_more_epochs_that_continue_the_same_lr(tmp_path, tiny_args):
    # a step schedule after its milestone: a 4th epoch runs at the lr of the 3rd
    run = tmp_path / "run"
    step = ["schedule.name=step", "warmup_epochs=0", "schedule.milestones=[1]"]
    assert main(["train", *tiny_args, *step, "epochs=3", f"output.dir={run}"]) == 0
    assert main(["train", "--resume", str(run), "epochs=4", "train.eval_every=1"]) == 0
    assert load_checkpoint(run / rd.CHECKPOINT)["epoch"] == 4
    # the record says from which epoch the new values hold
    changes = [json.loads(line) for line in (run / "changes.jsonl").read_text().splitlines()]
    assert changes == [{"epoch": 4, "changes": {"schedule.epochs": [3, 4],
                                                "train.eval_every": [3, 1]}}]
    assert "changed by --resume from epoch 4: schedule.epochs 3 -> 4" in (
        main(["report", str(run)]) == 0 and (run / "report.md").read_text())


def test_disk_full_while_saving_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch,
                                                                     tiny_args, cli_error):
    real_fsync, saves = os.fsync, []

    def full_at_the_second_checkpoint(fd):
        if rd.CHECKPOINT in os.readlink(f"/proc/self/fd/{fd}"):
            saves.append(fd)
            if len(saves) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_the_second_checkpoint)
    folder = tmp_path / "new"
    line = cli_error("train", *tiny_args, "epochs=2", f"output.dir={folder}")
    assert "No space left on device" in line and "last.pt" in line and "is kept" in line
    assert load_checkpoint(folder / rd.CHECKPOINT)["epoch"] == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_torch_write_failure_is_one_line(tmp_path, monkeypatch):
    from gpaco.weights.checkpoint import atomic_save
    from gpaco.errors import UserError

    def failing(obj, f):  # what torch.save raises on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(UserError, match="disk full"):
        atomic_save({"model": {}}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []
