import pytest

from gpaco import run as C
from gpaco.errors import UserError


def test_default_recipe_loads():
    cfg = C.load_config()
    assert cfg.name == "default" and cfg.method == "paco"


@pytest.mark.parametrize("name", C.list_recipes())
def test_every_recipe_resolves(name):
    cfg = C.load_config(name)
    assert cfg.name == name
    assert cfg.description


def test_recipe_inheritance_keeps_parent_values():
    child = C.load_config("cifar100-lt-paco-if50")
    assert child.data.imb_factor == pytest.approx(0.02)
    assert child.loss.alpha == 0.01 and child.model.queue_size == 1024


def test_paper_values_of_key_recipes():
    r = C.load_config("imagenet-lt-gpaco-r50")
    assert (r.method, r.optim.lr, r.loss.alpha, r.data.views) == (
        "gpaco", 0.04, 0.045, ["randcls", "randclsstack"])
    p = C.load_config("places-lt-paco-r152")
    assert p.model.freeze == "convs_but_last_block" and p.schedule.epochs == 30
    g = C.load_config("imagenet-gpaco-r50")
    assert g.loss.label_smoothing == 0.1 and g.loss.prior is False


def test_overrides_by_leaf_and_path():
    cfg = C.load_config("cifar100-lt-paco", overrides=["lr=0.1", "epochs=10", "milestones=[8]",
                                                       "data.workers=0",
                                                       "views=[cifar_sim]"])
    assert cfg.optim.lr == 0.1 and cfg.schedule.epochs == 10
    assert cfg.data.workers == 0 and cfg.data.views == ["cifar_sim"]


@pytest.mark.parametrize("override,message", [
    ("nosuchkey=1", "unknown config key 'nosuchkey'"),
    ("momentum=0.5", "ambiguous key 'momentum'"),
    ("lr", "not of the form key=value"),
    ("lr=-1", "optim.lr must be positive"),
    ("amp=fp8", "train.amp must be one of"),
    ("epochs=0", "schedule.epochs must be positive"),
    ("epochs=2.5", "schedule.epochs must be int"),
    ("alpha=abc", "loss.alpha must be float"),
    ("milestones=[5]", "schedule.milestones .* does not apply to schedule.name=cosine"),
    ("mean=[0.5]", "data.mean must list 3 numbers"),
    ("views=[a,b,c]", "data.views must list one or two"),
    ("channels_last=yes please", "train.channels_last must be bool"),
    ("max_steps_per_epoch=0", "train.max_steps_per_epoch must be positive"),
    ("max_steps_per_epoch=-1", "train.max_steps_per_epoch must be positive"),
    ("warmup_epochs=-1", "schedule.warmup_epochs must not be negative"),
    ("data.workers=-2", "data.workers must not be negative"),
    ("loss.label_smoothing=-0.1", "loss.label_smoothing must not be negative"),
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
    assert cfg.name == "mine" and cfg.optim.lr == 0.2
    assert cfg.data.dataset == "cifar10_lt"
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lrr: 0.2\n")
    with pytest.raises(UserError, match="unknown config key 'optim.lrr'"):
        C.load_config(config_file=str(bad))
    with pytest.raises(UserError, match="config file not found"):
        C.load_config(config_file=str(tmp_path / "missing.yaml"))


def test_yaml_exponents_without_a_dot_are_numbers():
    # PyYAML reads `5e-4` as a string; the schema says these keys are floats.
    cfg = C.load_config(overrides=["weight_decay=5e-4", "lr=1e-3"])
    assert cfg.optim.weight_decay == 5e-4 and cfg.optim.lr == 1e-3


def test_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = C.load_config(overrides=["data.root=data", "output.dir=runs/x"])
    C.absolute_paths(cfg)
    assert cfg.data.root == str(tmp_path / "data")
    assert cfg.output.dir == str(tmp_path / "runs" / "x")


def test_step_schedule_keys_are_typed_and_defaulted():
    with pytest.raises(UserError, match="schedule.milestones must be list"):
        C.load_config(overrides=["schedule.name=step", "milestones=5"])
    with pytest.raises(UserError, match="milestones must be increasing"):
        C.load_config(overrides=["schedule.name=step", "milestones=[30,20]"])
    cfg = C.load_config(overrides=["schedule.name=step", "epochs=400", "warmup_epochs=10"])
    assert cfg.schedule.milestones == [320, 360] and cfg.schedule.decay == 0.1


@pytest.mark.parametrize("overrides, message", [
    (["method=paco", "loss.tau=3"], r"loss.tau \(set by the command line\) does not apply to "
                                    r"method=paco; it is used by method=logit_adjusted"),
    (["method=multitask", "loss.gamma=0"], "loss.gamma .* does not apply to method=multitask"),
    (["method=gpaco", "model.momentum=0.5"], "model.momentum .* it is used by method=paco"),
    (["model.joint_forward=true"], "model.joint_forward .* does not apply to method=paco"),
    (["method=ce", "model.queue_size=10"], "model.queue_size .* does not apply to method=ce"),
    (["data.imb_factor=0.1"], "data.imb_factor .* does not apply to data.dataset=embedded"),
    (["data.train_split=a.txt"], "data.train_split .* does not apply to data.dataset=embedded"),
    (["data.dataset=imagenet_lt", "data.num_classes=5"],
     "data.num_classes .* used by data.dataset=split_file"),
    (["data.dataset=cifar10_lt", "data.on_bad_image=skip"], "data.on_bad_image .*dataset=cifar10_lt"),
])
def test_keys_that_do_not_apply_are_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        C.load_config(overrides=overrides)


def test_keys_a_recipe_set_for_another_method_are_dropped():
    # The recipe's PaCo values do not reach CE; the command line chose the method after them.
    cfg = C.load_config("cifar100-lt-paco", overrides=["method=ce"])
    assert cfg.loss.alpha is None and cfg.model.queue_size is None and cfg.model.momentum is None
    assert cfg.loss.label_smoothing == 0.0  # CE's own default
    # ... but a key the command line sets itself must apply
    with pytest.raises(UserError, match="loss.alpha"):
        C.load_config("cifar100-lt-paco", overrides=["method=ce", "loss.alpha=0.1"])


def test_unset_keys_take_the_methods_own_defaults(tmp_path):
    f = tmp_path / "multitask.yaml"
    f.write_text("method: multitask\n")
    cfg = C.load_config(config_file=str(f))
    assert cfg.loss.alpha == 0.5 and cfg.loss.temperature == 0.07  # MultiTaskLoss's defaults
    assert cfg.model.head == "nobn" and cfg.model.momentum is None
    paco = C.load_config(overrides=["method=paco"])
    assert paco.model.head == "bn" and paco.model.momentum == 0.999


def test_a_recipe_less_run_on_own_data_starts_from_the_section_defaults():
    cfg = C.load_config(overrides=["data.dataset=image_folder", "data.root=/x"])
    assert cfg.name == "run" and cfg.data.batched_augment is False
    assert cfg.data.imb_factor is None and cfg.data.subset_seed == 0
    assert C.load_config(overrides=["lr=0.3"]).name == "default"  # otherwise the default recipe


def test_saved_configs_of_older_versions_still_load():
    # Older versions saved every key, applicable or not, and called batched_augment on_gpu.
    old = C.to_dict(C.load_config())
    old["data"]["on_gpu"] = old["data"].pop("batched_augment")
    old["loss"]["tau"], old["model"]["joint_forward"], old["data"]["download"] = 1.0, False, False
    cfg = C.from_dict(old, overrides=["epochs=3"])
    assert cfg.data.batched_augment is True and cfg.loss.tau is None
    assert cfg.schedule.epochs == 3
    assert C.from_dict(C.to_dict(cfg)) == cfg  # a round trip changes nothing

