import subprocess
import sys
from pathlib import Path

import pytest

from gpaco.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpaco", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("args,message", [
    (["train", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["train", "nosuch=1"], "unknown config key 'nosuch'"),
    (["train", "--config", "missing.yaml"], "config file not found: missing.yaml"),
    (["eval", "--checkpoint", "missing.pt"], "checkpoint not found: missing.pt"),
    (["report", "nowhere"], "is not a gpaco run directory"),
    (["train", "--recipe", "cifar10-lt-paco", "data.root=/nonexistent", "train.device=cpu"],
     "/nonexistent"),
])
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpaco: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_recipes_lists_the_paper_settings(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("default", "cifar100-lt-paco", "imagenet-lt-gpaco-r50", "places-lt-paco-r152"):
        assert name in out


def test_train_refuses_existing_run_then_resume_and_report(tmp_path, capsys, tiny_args):
    out = tmp_path / "run"
    args = ["train", *tiny_args, "epochs=1", f"output.dir={out}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "final (last epoch) accuracy: overall" in printed
    # the default (PaCo) run states its extra head-class discount: 2 x 32 + 64 contrast samples
    assert "center share at the loss optimum:" in printed and "128 contrast samples" in printed
    before = (out / "last.pt").read_bytes()
    assert main(args) == 2
    assert "exists; use --resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before  # nothing overwritten
    assert main(["train", "--resume", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "| test, last epoch (1) |" in report and (out / "report.md").is_file()
    pictures = ["curves.png", "per_class_accuracy.png", "reliability.png"]
    assert [line for line in report.splitlines() if line.startswith("![")] == [
        f"![{png}]({png})" for png in pictures] and all((out / p).is_file() for p in pictures)
    assert main(["eval", "--checkpoint", str(out / "last.pt"), "output.progress=none"]) == 0
    assert "test: top1" in capsys.readouterr().out


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path, tiny_args):
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={precious}", "--overwrite"]) == 2
    assert (precious / "keep.txt").read_text() == "mine"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={a_file}"]) == 2


def test_overwrite_with_a_broken_config_keeps_the_old_run(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    assert main(["train", *tiny_args, "epochs=1", f"output.dir={out}"]) == 0
    before = (out / "last.pt").read_bytes()
    bad = ["train", *tiny_args, "epochs=1", f"output.dir={out}", "--overwrite",
           "data.dataset=split_file", f"data.root={tmp_path}", "train_split=/nope.txt"]
    assert main(bad) == 2
    assert "gpaco: error:" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


def test_overrides_without_a_subcommand_train(tmp_path, tiny_args, capsys):
    assert main([*tiny_args, "epochs=1", f"output.dir={tmp_path / 'r'}"]) == 0
    assert "final (last epoch) accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("mistake,message", [
    (["data.dataset=cifar10_lt", "data.root={tmp}"], "data.download=true"),
    (["data.dataset=cifar10_lt", "data.root={tmp}", "data.imb_factor=2"], "data.imb_factor must"),
    (["data.dataset=split_file", "data.root={tmp}", "data.train_split={tmp}/t.txt"],
     "data.test_split is needed"),
    (["data.dataset=cifar10_lt"], "data.root="),
    (["data.dataset=image_folder", "data.root={tmp}", "data.on_bad_image=skip",
      "data.imb_type=none"], "data.imb_type must"),
])
def test_hints_name_the_real_config_keys(mistake, message, tmp_path, capsys, tiny_args):
    """Every `key=` an error tells the user to set is a full dotted key (`data.root=`)."""
    import re

    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "t.txt").write_text("x.png 0\n")
    argv = ["train", *tiny_args, *(m.format(tmp=tmp_path) for m in mistake),
            f"output.dir={tmp_path / 'run'}"]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert message in line, line
    for key in re.findall(r"([A-Za-z_][\w.]*)=", line.split("gpaco: error: ", 1)[1]):
        if not line.split(key + "=")[0].endswith("/"):  # paths in the message are not hints
            assert "." in key, f"{key}= is not a config key in: {line}"
