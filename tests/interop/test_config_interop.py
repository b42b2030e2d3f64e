"""The config keys of interop: model.pretrained (bool or file), model.backbone_kwargs (dict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpaco.engine.build import build_model
from gpaco.engine.config import coerce, from_dict, load_config, to_dict
from gpaco.errors import UserError


def test_pretrained_is_a_bool_or_a_path() -> None:
    assert load_config(overrides=["model.pretrained=true"]).model.pretrained is True
    assert load_config(overrides=["model.pretrained=false"]).model.pretrained is False
    assert load_config(overrides=["model.pretrained=w/r32.pth"]).model.pretrained == "w/r32.pth"


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
