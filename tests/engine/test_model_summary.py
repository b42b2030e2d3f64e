"""Parameter counts per part: `gpaco config`'s last line and a run's first lines."""

from __future__ import annotations

from gpaco.cli import main


def test_the_run_and_gpaco_config_print_parameters_per_part(tmp_path, capsys) -> None:
    assert main(["config", "--recipe", "seg-cityscapes-deeplabv3plus-r18-gpaco"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    # encoder (ResNet-18-V1c), the authors' decoder, heads: projection + conv_seg + aux FCN
    heads = (2 * (128 * 128 + 256) + 128 * 128 + 128) + (19 * 128 + 19) + (
        256 * 64 * 9 + 128 + 19 * 64 + 19)
    assert last == (f"# parameters: encoder 11,195,744 | decoder 1,121,948 | heads {heads:,} "
                    f"| total {11_195_744 + 1_121_948 + heads:,} (19 classes)")
    assert main(["config", "--recipe", "cifar10-lt-ce"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(
        "# parameters: encoder 463,504 | heads 650 | total 464,154 (10 classes)")
    run = tmp_path / "run"
    assert main(["train", "--recipe", "cifar10-lt-ce", "data.dataset=embedded", "data.root=null",
                 "schedule.epochs=1", "schedule.warmup_epochs=0", "schedule.milestones=[]",
                 "train.max_steps_per_epoch=1",
                 "train.device=cpu",
                 "output.progress=none", "output.tensorboard=false", "output.plots=false",
                 f"output.dir={run}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("parameters: encoder 463,504 | heads 650 | total 464,154")
