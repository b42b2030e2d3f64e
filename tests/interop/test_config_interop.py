"""The config keys of interop: model.pretrained (false, weights name or file), model.backbone_kwargs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpaco.tasks.classification.build import build_model
from gpaco.config.coerce import coerce
from gpaco.run import absolute_paths, from_dict, load_config, to_dict
from gpaco.weights.load import weights_file
from gpaco.errors import UserError


def test_pretrained_is_false_a_weights_name_or_a_path() -> None:
    assert load_config(overrides=["model.pretrained=false"]).model.pretrained is False
    assert load_config(overrides=["model.pretrained=w/r32.pth"]).model.pretrained == "w/r32.pth"
    assert load_config(overrides=["model.pretrained=IMAGENET1K_V1"]).model.pretrained == \
        "IMAGENET1K_V1"
    assert weights_file("w/r32.pth") and weights_file("r32.pth.tar") and weights_file("m.safetensors")
    assert not weights_file("IMAGENET1K_V1") and not weights_file("a1_in1k")


def test_pretrained_true_is_refused_as_implicit() -> None:
    with pytest.raises(UserError, match="model.pretrained=true does not say which weights"):
        load_config(overrides=["model.pretrained=true"])


def test_a_saved_config_from_before_named_weights_still_loads() -> None:
    saved = to_dict(load_config())
    saved["model"]["pretrained"] = True  # what older versions wrote for the Places recipes
    assert from_dict(saved).model.pretrained is False  # the checkpoint brings the weights


def test_a_relative_pretrained_file_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(overrides=["model.pretrained=w/r32.pth"])
    absolute_paths(cfg)
    assert cfg.model.pretrained == str(tmp_path / "w" / "r32.pth")
    named = load_config(overrides=["model.pretrained=IMAGENET1K_V1"])
    absolute_paths(named)
    assert named.model.pretrained == "IMAGENET1K_V1"


def test_a_weights_name_the_backbone_lacks_is_one_line_through_the_cli(capsys) -> None:
    from gpaco.cli import main

    code = main(["train", "model.backbone=resnet152", "model.pretrained=DEFAULT",
                 "output.dir=/nonexistent/never-made"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "moving alias" in err


def test_backbone_kwargs_is_a_mapping_that_round_trips() -> None:
    cfg = load_config(overrides=["model.backbone_kwargs={global_pool: avg, img_size: 32}"])
    assert cfg.model.backbone_kwargs == {"global_pool": "avg", "img_size": 32}
    assert from_dict(to_dict(cfg)).model.backbone_kwargs == cfg.model.backbone_kwargs
    with pytest.raises(UserError, match="model.backbone_kwargs must be a mapping"):
        load_config(overrides=["model.backbone_kwargs=7"])


def test_coerce_dict_values() -> None:
    assert coerce({"a": "1e-3"}, dict[str, float], "x") == {"a": 0.001}
    with pytest.raises(UserError, match=r"x\.a must be float"):
        coerce({"a": "no"}, dict[str, float], "x")


def test_a_missing_or_unreadable_pretrained_file_is_one_line(tmp_path: Path) -> None:
    cfg = load_config(overrides=[f"model.pretrained={tmp_path / 'missing.pth'}"])
    with pytest.raises(UserError, match="checkpoint not found"):
        build_model(cfg, 10)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    cfg.model.pretrained = str(junk)
    with pytest.raises(UserError, match="junk.pth") as err:
        build_model(cfg, 10)
    assert "\n" not in str(err.value)
