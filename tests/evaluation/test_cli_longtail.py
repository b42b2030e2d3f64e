"""gpaco eval's long-tail evaluation through the command line, on one tiny trained run."""

import hashlib
import json

import pytest

from gpaco.cli import main

TINY = ["train.batch_size=32", "train.max_steps_per_epoch=3", "train.eval_batch_size=500",
        "output.progress=none", "output.tensorboard=true", "model.queue_size=64",
        "model.backbone=resnet8", "train.device=cpu", "train.threads=1", "epochs=1"]


def _hashes(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lt") / "run"
    assert main(["train", *TINY, f"output.dir={out}"]) == 0
    return out


def test_training_writes_calibration_everywhere(run):
    summary = json.loads((run / "summary.json").read_text())
    cal = summary["last"]["calibration"]
    assert set(cal) == {"overall", "many", "medium", "few"}
    assert 0 <= cal["overall"]["ece"] <= 100 and cal["overall"]["nll"] > 0
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["test"]["calibration"] == cal and "calibration" in record["val"]
    assert (run / "reliability.png").stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "test/calibration/overall/ece" in tags and "val/calibration/few/nll" in tags
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "| many |" in report and "class-wise ECE" in report and "reliability.png" in report


def test_posthoc_and_shift_from_the_checkpoint_then_from_saved_logits(run, capsys):
    before = _hashes(run)
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--posthoc", "--prior-shift"]) == 0
    printed = capsys.readouterr().out
    assert "calibration: ECE" in printed and "| bias_corrected |" in printed
    assert "| forward-50 |" in printed and "| backward-50 |" in printed
    out = run / "eval-last"
    after = _hashes(run)
    # evaluation added its own folder and changed nothing of the run's files
    assert {k: v for k, v in after.items() if k.parts[0] != "eval-last"} == before
    posthoc = json.loads((out / "posthoc.json").read_text())
    assert posthoc["fit"]["fitted_on"] == "val" and posthoc["fit"]["val_samples"] == 1000
    assert set(posthoc["test"]) == {"none", "temperature", "logit_adjustment", "both",
                                    "bias_corrected", "center_share"}  # a PaCo run
    meta = json.loads((out / "test_logits.meta.json").read_text())
    assert meta["prior_in_loss"] is True and meta["method"] == "paco"
    assert posthoc["fit"]["center_log_weights"] == meta["center_log_weights"]
    rows = json.loads((out / "prior_shift.json").read_text())
    assert len(rows) == 2 * 11 and (out / "prior_shift.png").stat().st_size > 0
    # the same numbers again from the saved logits alone, into another folder
    again = run.parent / "again"
    assert main(["eval", "--logits", str(out / "test_logits.npy"), "--val-logits",
                 str(out / "val_logits.npy"), "--posthoc", "--prior-shift", "--out",
                 str(again)]) == 0
    assert json.loads((again / "posthoc.json").read_text())["test"] == posthoc["test"]
    assert json.loads((again / "prior_shift.json").read_text()) == rows
    # two models compared: one table, one reliability diagram each
    both = run.parent / "both"
    assert main(["eval", "--logits", str(out / "test_logits.npy"), "--logits",
                 str(again / "../run/eval-last/test_logits.npy"), "--prior-shift", "--out",
                 str(both)]) == 0
    compared = json.loads((both / "prior_shift.json").read_text())
    assert len({r["model"] for r in compared}) == 2 and len(compared) == 2 * 11
    assert (both / "reliability-0.png").is_file() and (both / "reliability-1.png").is_file()
    # rerunning into a folder it wrote is fine
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--posthoc"]) == 0


def test_refusals_are_one_line(run, capsys, tmp_path):
    saved = run / "saved.npy"
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--save-logits", str(saved)]) == 0
    assert "calibration: ECE" in capsys.readouterr().out
    cases = [
        (["--logits", str(saved), "--val-logits", str(saved), "--posthoc"],
         "never on the test split"),
        (["--logits", str(saved), "--posthoc"], "needs one --logits file and --val-logits"),
        (["--logits", str(tmp_path / "nope.npy"), "--prior-shift"], "does not exist"),
        (["--checkpoint", str(run / "last.pt"), "--logits", str(saved), "--prior-shift"],
         "not both"),
    ]
    for args, message in cases:
        assert main(["eval", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert main(["eval", "--logits", str(saved), "--prior-shift", "--out", str(foreign)]) == 2
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep"
