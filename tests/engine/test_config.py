import pytest

from gpaco.engine import config as C
from gpaco.errors import UserError


def test_default_recipe_loads():
    cfg = C.load_config()
    assert cfg["name"] == "default" and cfg["method"] == "paco"


@pytest.mark.parametrize("name", C.list_recipes())
def test_every_recipe_resolves(name):
    cfg = C.load_config(name)
    assert cfg["name"] == name
    assert cfg["description"]


def test_recipe_inheritance_keeps_parent_values():
    child = C.load_config("cifar100-lt-paco-if50")
    assert child["data"]["imb_factor"] == pytest.approx(0.02)
    assert child["loss"]["alpha"] == 0.01 and child["model"]["queue_size"] == 1024


def test_paper_values_of_key_recipes():
    r = C.load_config("imagenet-lt-gpaco-r50")
    assert (r["method"], r["optim"]["lr"], r["loss"]["alpha"], r["data"]["views"]) == (
        "gpaco", 0.04, 0.045, ["randcls", "randclsstack"])
    p = C.load_config("places-lt-paco-r152")
    assert p["model"]["freeze"] == "convs_but_last_block" and p["schedule"]["epochs"] == 30
    g = C.load_config("imagenet-gpaco-r50")
    assert g["loss"]["label_smoothing"] == 0.1 and g["loss"]["prior"] is False


def test_overrides_by_leaf_and_path():
    cfg = C.load_config("cifar100-lt-paco", overrides=["lr=0.1", "epochs=10", "data.workers=0",
                                                       "views=[cifar_sim]"])
    assert cfg["optim"]["lr"] == 0.1 and cfg["schedule"]["epochs"] == 10
    assert cfg["data"]["workers"] == 0 and cfg["data"]["views"] == ["cifar_sim"]


@pytest.mark.parametrize("override,message", [
    ("nosuchkey=1", "unknown config key 'nosuchkey'"),
    ("momentum=0.5", "ambiguous key 'momentum'"),
    ("lr", "not of the form key=value"),
    ("lr=-1", "optim.lr must be positive"),
    ("amp=fp8", "train.amp must be one of"),
    ("epochs=0", "schedule.epochs must be positive"),
    ("epochs=2.5", "schedule.epochs must be int"),
    ("alpha=abc", "loss.alpha must be float"),
    ("milestones=5", "schedule.milestones must be list"),
    ("mean=[0.5]", "data.mean must list 3 numbers"),
    ("views=[a,b,c]", "data.views must list one or two"),
    ("channels_last=yes please", "train.channels_last must be bool"),
])
def test_bad_overrides_are_user_errors(override, message):
    with pytest.raises(UserError, match=message):
        C.load_config(overrides=[override])


def test_unknown_recipe_lists_known_ones():
    with pytest.raises(UserError, match="unknown recipe 'nope'.*cifar100-lt-paco"):
        C.load_config("nope")


def test_config_file_with_base_and_typo(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("base: cifar10-lt-paco\nname: mine\noptim:\n  lr: 0.2\n")
    cfg = C.load_config(config_file=str(good))
    assert cfg["name"] == "mine" and cfg["optim"]["lr"] == 0.2
    assert cfg["data"]["dataset"] == "cifar10_lt"
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lrr: 0.2\n")
    with pytest.raises(UserError, match="unknown config key 'optim.lrr'"):
        C.load_config(config_file=str(bad))
    with pytest.raises(UserError, match="config file not found"):
        C.load_config(config_file=str(tmp_path / "missing.yaml"))


def test_yaml_exponents_without_a_dot_are_numbers():
    # PyYAML reads `5e-4` as a string; the schema says these keys are floats.
    cfg = C.load_config(overrides=["weight_decay=5e-4", "lr=1e-3"])
    assert cfg["optim"]["weight_decay"] == 5e-4 and cfg["optim"]["lr"] == 1e-3


def test_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = C.load_config(overrides=["data.root=data", "output.dir=runs/x"])
    C.absolute_paths(cfg)
    assert cfg["data"]["root"] == str(tmp_path / "data")
    assert cfg["output"]["dir"] == str(tmp_path / "runs" / "x")
