from pathlib import Path

import pytest
import torch

from gpaco.train import run_dir as rd
from gpaco import run as T
from gpaco.train import trainer
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.train.loop import TrainingDiverged


def _train(cfg, resume=False):
    return T.train(cfg, Path(cfg.output.dir), resume=resume)


@pytest.mark.parametrize("method", ["paco", "gpaco", "ce", "balanced_softmax", "multitask"])
def test_every_method_trains_and_writes_its_run_dir(tiny_cfg, method):
    views = "[cifar_regular]" if method in ("ce", "balanced_softmax") else "[cifar_regular,cifar_sim]"
    cfg = tiny_cfg(f"method={method}", "epochs=2", "eval_every=1", f"views={views}",
                   "output.plots=true")
    summary = _train(cfg)
    folder = Path(cfg.output.dir)
    for name in ("config.yaml", "environment.json", "metrics.jsonl", "last.pt", "summary.json",
                 "per_class_accuracy.csv", "per_class_accuracy.png", "curves.png"):
        assert (folder / name).is_file(), name
    records = rd.read_metrics(folder)
    assert [r["epoch"] for r in records] == [1, 2] and "test" in records[-1]
    assert 0.0 <= summary["last"]["top1"] <= 100.0
    assert summary["last"]["many"] is not None and summary["last"]["few"] is not None
    assert load_checkpoint(folder / "last.pt")["epoch"] == 2


def test_tensor_pipeline_and_pil_pipeline_both_train(tiny_cfg):
    for batched in ("true", "false"):
        cfg = tiny_cfg(f"data.batched_augment={batched}", "epochs=1",
                       f"output.dir={tiny_cfg().output.dir}-{batched}")
        assert _train(cfg)["last"]["top1"] >= 0.0


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tiny_cfg, tmp_path,
                                                                  train_until_killed):
    full = tiny_cfg("epochs=3", f"output.dir={tmp_path / 'full'}")
    _train(full)
    cut = tiny_cfg("epochs=3", f"output.dir={tmp_path / 'cut'}")
    train_until_killed(cut, 2)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    _train(cut, resume=True)
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    epochs = [r["epoch"] for r in rd.read_metrics(tmp_path / "cut")]
    assert epochs == [1, 2, 3]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg, monkeypatch):
    cfg = tiny_cfg("epochs=3")
    original = trainer._run_epoch

    def poisoned(run, epoch):
        if epoch == 1:
            with torch.no_grad():
                for p in run.model.parameters():
                    p.fill_(float("nan"))
        return original(run, epoch)

    monkeypatch.setattr(trainer, "_run_epoch", poisoned)
    with pytest.raises(TrainingDiverged, match="nan"):
        _train(cfg)
    ckpt = load_checkpoint(Path(cfg.output.dir) / "last.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_validation_split_selects_best_epoch_without_touching_test(tmp_path, tiny_cfg):
    from PIL import Image

    root = tmp_path / "imgs"
    lines = []
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(6 if c == 0 else 3):
            Image.new("RGB", (12, 12), (80 * c, 40, 200 - 60 * c)).save(root / f"c{c}" / f"{i}.png")
            lines.append(f"c{c}/{i}.png {c}")
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    cfg_args = ["data.dataset=split_file", f"data.root={root}",
                f"data.train_split={tmp_path / 'train.txt'}", f"val_split={tmp_path / 'val.txt'}",
                f"test_split={tmp_path / 'test.txt'}", "data.batched_augment=false",
                "image_size=12", "epochs=2", "batch_size=4", "views=[cifar_test]",
                "test_transform=cifar_test", "method=ce"]
    cfg = tiny_cfg(*cfg_args)
    summary = _train(cfg)
    best = summary["best_on_val"]
    assert best is not None and best["epoch"] in (1, 2)
    assert set(best) == {"epoch", "val", "test"}
    assert (Path(cfg.output.dir) / "best.pt").is_file()
    # Validation every epoch, the test set every 3rd epoch, at the last and at each new best.
    cfg = tiny_cfg(*[o for o in cfg_args if not o.startswith("epochs=")], "epochs=5",
                   "train.eval_every=3", "train.val_every=1", f"output.dir={tmp_path / 'cadence'}")
    summary = _train(cfg)
    records = rd.read_metrics(Path(cfg.output.dir))
    assert all("val" in r for r in records)
    best_so_far, tested = -1.0, []
    for i, r in enumerate(records):
        improved = r["val"]["top1"] > best_so_far
        best_so_far = max(best_so_far, r["val"]["top1"])
        assert ("test" in r) == (improved or i in (2, 4)), (i, r)
    best = summary["best_on_val"]
    chosen = [r for r in records if r["epoch"] == best["epoch"]][0]
    assert best["test"] == chosen["test"] and best["val"] == chosen["val"]


def test_image_folder_splits_with_different_classes_are_refused(tmp_path, tiny_cfg):
    from PIL import Image

    from gpaco.errors import UserError

    for split, classes in (("train", ("cat", "dog")), ("val", ("cat", "fox"))):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8)).save(tmp_path / split / c / f"{i}.png")
    cfg = tiny_cfg("data.dataset=image_folder", f"data.root={tmp_path}", "data.batched_augment=false",
                   "image_size=8", "epochs=1", "batch_size=2", "method=ce",
                   "views=[cifar_test]")
    with pytest.raises(UserError, match="different class folders"):
        _train(cfg)
    assert not Path(cfg.output.dir).exists()  # refused before creating the run folder
