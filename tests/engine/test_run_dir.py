"""The run folder: what a killed append leaves, runs that died early, folders that cannot be made."""

import json
import os
from pathlib import Path

import pytest

from gpaco.train import run_dir as rd
from gpaco.errors import UserError


def test_a_broken_last_metrics_line_is_left_out(tmp_path):
    good = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]
    text = "".join(json.dumps(r) + "\n" for r in good) + '{"epoch": 3, "train_lo'
    (tmp_path / rd.METRICS).write_text(text)
    assert rd.read_metrics(tmp_path) == good
    rd.truncate_metrics(tmp_path, 2)  # what --resume does: the broken line is gone for good
    assert (tmp_path / rd.METRICS).read_text().count("\n") == 2


def test_metrics_of_older_runs_counted_from_0_read_from_1(tmp_path):
    (tmp_path / rd.METRICS).write_text('{"epoch": 0}\n{"epoch": 1}\n')
    assert [r["epoch"] for r in rd.read_metrics(tmp_path)] == [1, 2]


def test_a_broken_line_before_the_last_is_an_error(tmp_path):
    (tmp_path / rd.METRICS).write_text('{"epoch": 0}\nnot json\n{"epoch": 1}\n')
    with pytest.raises(UserError, match="line 2 is not a JSON record"):
        rd.read_metrics(tmp_path)


def test_a_run_that_died_before_its_first_checkpoint_is_simply_rerun(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / rd.CONFIG).write_text("name: x\n")
    with pytest.raises(UserError, match="run it again without --resume"):
        rd.prepare(run, resume=True, overwrite=False)
    assert rd.prepare(run, resume=False, overwrite=False) is None  # nothing set aside
    assert not (run / rd.CONFIG).exists()
    (run / rd.CONFIG).write_text("name: x\n")
    (run / rd.CHECKPOINT).write_bytes(b"x")  # a run with a checkpoint is never replaced silently
    with pytest.raises(UserError, match="exists; use --resume"):
        rd.prepare(run, resume=False, overwrite=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_parent_is_one_line(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(UserError, match="cannot prepare run directory .*Permission denied"):
            rd.prepare(tmp_path / "run", resume=False, overwrite=False)
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize("where", ["file/run", "/proc/gpaco-run"])
def test_folders_that_cannot_be_made_are_one_line(tmp_path, where):
    (tmp_path / "file").write_text("in the way")
    target = Path(where) if where.startswith("/") else tmp_path / where
    with pytest.raises(UserError, match="cannot prepare run directory"):
        rd.prepare(target, resume=False, overwrite=False)


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tiny_cfg, monkeypatch):
    from gpaco import run as T
    from gpaco.train import trainer

    cfg = tiny_cfg("epochs=1", "output.plots=false")
    folder = Path(cfg.output.dir)
    T.train(cfg, folder)
    old = (folder / rd.CHECKPOINT).read_bytes()

    def broken(run, epoch):
        raise UserError("cannot read image x.jpg")  # what a bad JPEG in epoch 1 does

    monkeypatch.setattr(trainer, "_run_epoch", broken)
    with pytest.raises(UserError, match="x.jpg"):
        T.train(cfg, folder, overwrite=True)
    assert (folder / rd.CHECKPOINT).read_bytes() == old  # the old run is back, whole
    assert not (folder.parent / f".{folder.name}.previous").exists()
    monkeypatch.undo()
    T.train(cfg, folder, overwrite=True)  # a new run that succeeds replaces it for good
    assert not (folder.parent / f".{folder.name}.previous").exists()
    assert rd.read_metrics(folder)[-1]["epoch"] == 1


def test_a_run_set_aside_by_a_killed_overwrite_is_named_with_how_to_restore(tmp_path, capsys,
                                                                            tiny_args):
    from gpaco.cli import main

    run = tmp_path / "x"
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={run}"]) == 0
    # what a kill (SIGKILL) during --overwrite before the first checkpoint leaves
    aside = tmp_path / ".x.previous"
    run.rename(aside)
    run.mkdir()
    (run / rd.CONFIG).write_text("name: x\n")
    for args in (["--resume", str(run)], [*tiny_args, "epochs=1", f"output.dir={run}"],
                 [*tiny_args, "epochs=1", f"output.dir={run}", "--overwrite"]):
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(aside) in err and f"mv {aside} {run}" in err
    assert (aside / rd.CHECKPOINT).is_file()
