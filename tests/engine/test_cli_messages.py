"""Every input is used or refused in one line, and the line says what to do (issue 22,
classes 4 and 6)."""

from __future__ import annotations

import shutil
import signal

import pytest

from gpaco.cli import main
from gpaco.train import run_dir as rd


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_args_for_module):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *tiny_args_for_module, "epochs=1", f"output.dir={run}"]) == 0
    return run


def test_recipe_with_resume_is_refused(finished, cli_error):
    line = cli_error("train", "--resume", str(finished), "--recipe", "cifar10-lt-ce")
    assert "--recipe would be ignored" in line


def test_recipe_with_a_gpaco_checkpoint_is_refused(finished, cli_error):
    line = cli_error("export", str(finished / rd.CHECKPOINT), "--out", "/dev/null",
                     "--recipe", "cifar10-lt-ce")
    assert "is a gpaco checkpoint" in line and "--recipe" in line


def test_suite_options_without_a_suite_are_refused(finished, cli_error):
    line = cli_error("eval", "--checkpoint", str(finished / rd.CHECKPOINT),
                     "--protocol", "hendrycks", "--partial")
    assert "--protocol, --partial apply to a robustness suite only" in line


@pytest.mark.parametrize("argv,words", [
    (["trian"], "unknown command 'trian'"),
    (["trian"], "did you mean `gpaco train`"),
    (["config", "optim=adamw"], "optim.name="),
    (["config", "learning_rat=0.1"], "unknown config key 'learning_rat'"),
])
def test_typos_name_what_was_meant(argv, words, cli_error):
    assert words in cli_error(*argv)


def test_yaml_errors_give_the_line(tmp_path, cli_error):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 0.1\n  name: [sgd\n")
    assert "at line 4" in cli_error("config", "--config", str(bad)) or \
        "at line 3" in cli_error("config", "--config", str(bad))


def test_resume_and_checkpoint_paths_say_what_to_pass(finished, tmp_path, cli_error):
    line = cli_error("train", "--resume", str(finished / rd.CHECKPOINT))
    assert f"--resume {finished}" in line
    loose = tmp_path / "conv.pt"
    shutil.copy(finished / rd.CHECKPOINT, loose)
    assert "model.pretrained=" in cli_error("train", "--resume", str(loose))
    line = cli_error("eval", "--checkpoint", str(finished))
    assert "is a folder" in line and str(finished / rd.CHECKPOINT) in line


def test_a_changed_method_on_resume_names_the_key(finished, tmp_path, cli_error):
    line = cli_error("train", "--resume", str(finished), "method=ce")
    assert "--resume cannot change the network: method 'paco' -> 'ce'" in line


def test_sigterm_before_the_first_checkpoint_says_none_was_written(tmp_path, tiny_args, capsys,
                                                                   monkeypatch):
    from gpaco.train import trainer as T

    def terminated(run, epoch):
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(T, "_run_epoch", terminated)
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={tmp_path / 'r'}"]) == 143
    err = capsys.readouterr().err
    assert "no checkpoint was written yet" in err and "is kept" not in err


def test_report_after_a_resume_counts_every_session(tmp_path, tiny_args, train_until_killed):
    from gpaco import run as C

    run = tmp_path / "run"
    train_until_killed(C.load_config(overrides=[*tiny_args, "epochs=2", f"output.dir={run}"]), 1)
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    assert "over 2 epochs" in (run / "report.md").read_text()
