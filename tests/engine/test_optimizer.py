"""optim.name / blr / betas / layer_decay, the per-step schedules in the config, and gradient
accumulation (train.accum_iter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gpaco import run as C
from gpaco import run as T
from gpaco.train import trainer
from gpaco.tasks.classification.build import build_model
from gpaco.train.optimizer import optimizer_of as build_optimizer
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.train.optimizer import decay_groups, param_groups
from gpaco.train.run_dir import read_metrics
from gpaco.train.schedule import lr_at
from gpaco.train.step import EagerStep
from gpaco.errors import UserError


def test_sgd_is_one_group_of_everything_as_before():
    cfg = C.load_config("cifar100-lt-gpaco")
    opt = build_optimizer(cfg, build_model(cfg, 100))
    assert type(opt) is torch.optim.SGD and len(opt.param_groups) == 1
    g = opt.param_groups[0]
    assert (g["momentum"], g["nesterov"], g["weight_decay"]) == (0.9, False, 5e-4)


def test_adamw_without_vit_skips_decay_on_1d_params():
    cfg = C.load_config(overrides=["optim.name=adamw", "optim.weight_decay=0.05",
                                   "optim.betas=[0.9,0.95]"])
    model = build_model(cfg, 10)
    opt = build_optimizer(cfg, model)
    assert type(opt) is torch.optim.AdamW and opt.defaults["betas"] == (0.9, 0.95)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    for name, p in model.named_parameters():
        if p.requires_grad:  # (PaCo's key encoder is not trained)
            assert (id(p) in decay) == (p.ndim > 1), name
    # layer decay works for a ResNet too (timm's per-block rule, gpaco.models.layer_decay) ...
    decayed = param_groups(model, C.load_config(overrides=["optim.name=adamw",
                                                           "optim.layer_decay=0.65"]).optim)
    assert max(g["lr_scale"] for g in decayed) == 1.0 and len({g["lr_scale"] for g in decayed}) > 2
    # ... and is refused for a model without layers
    with pytest.raises(UserError, match="layer_decay needs layer ids, and Linear has none"):
        param_groups(nn.Linear(2, 2), C.load_config(overrides=["optim.name=adamw",
                                                               "optim.layer_decay=0.65"]).optim)


def test_decay_groups_honour_no_weight_decay_names():
    model = nn.Linear(3, 2)
    model.no_weight_decay = lambda: {"weight"}
    no_decay, decay = decay_groups(model, 0.1)
    assert len(no_decay["params"]) == 2 and decay["params"] == []


def test_optimizer_options_belong_to_their_optimizer():
    with pytest.raises(UserError, match="optim.betas .* does not apply to optim.name=sgd"):
        C.load_config(overrides=["optim.betas=[0.9,0.95]"])
    with pytest.raises(UserError, match="optim.momentum .* used by optim.name=sgd"):
        C.load_config(overrides=["optim.name=adamw", "optim.momentum=0.9"])
    cfg = C.load_config(overrides=["optim.name=adamw"])
    assert (cfg.optim.betas, cfg.optim.layer_decay, cfg.optim.momentum) == ([0.9, 0.999], 1.0,
                                                                            None)
    with pytest.raises(UserError, match="optim.betas must be two numbers"):
        C.load_config(overrides=["optim.name=adamw", "optim.betas=[0.9]"])


def test_schedule_options_belong_to_their_schedule():
    with pytest.raises(UserError, match="schedule.min_lr .* used by schedule.name="
                                        "warmup_cosine|poly"):
        C.load_config(overrides=["schedule.min_lr=0"])
    with pytest.raises(UserError, match="schedule.power .* used by schedule.name=poly"):
        C.load_config(overrides=["schedule.name=warmup_cosine", "schedule.power=1"])
    poly = C.load_config(overrides=["schedule.name=poly"]).schedule
    assert (poly.min_lr, poly.power, poly.milestones) == (0.0, 0.9, None)
    with pytest.raises(UserError, match="warmup_epochs .* below"):
        C.load_config(overrides=["schedule.name=warmup_cosine", "epochs=5", "warmup_epochs=5"])


def test_blr_sets_lr_by_the_effective_batch(tmp_path):
    cfg = C.load_config(overrides=["optim.blr=5e-4", "train.batch_size=1024",
                                   "train.accum_iter=4"])
    assert cfg.optim.lr == pytest.approx(2e-3)  # MAE ViT-B: 5e-4 x 1024 / 256
    later = C.load_config(overrides=["optim.blr=5e-4", "train.batch_size=512"])
    assert later.optim.lr == pytest.approx(1e-3)
    # a config file with blr, then lr on the command line: lr wins and blr is dropped
    path = tmp_path / "c.yaml"
    path.write_text("base: default\noptim: {blr: 0.001}\n")
    cfg = C.load_config(config_file=str(path), overrides=["optim.lr=0.3"])
    assert (cfg.optim.lr, cfg.optim.blr) == (0.3, None)
    with pytest.raises(UserError, match="sets both optim.lr and optim.blr"):
        C.load_config(overrides=["optim.blr=1e-3", "optim.lr=0.1"])
    # a saved config holds both; loading it recomputes lr from blr and the (new) batch
    saved = C.to_dict(C.load_config(overrides=["optim.blr=1e-3", "batch_size=256"]))
    assert C.from_dict(saved, overrides=["batch_size=512"]).optim.lr == pytest.approx(2e-3)


def test_accum_iter_must_divide_the_batch():
    with pytest.raises(UserError, match="multiple of train.accum_iter"):
        C.load_config(overrides=["train.batch_size=30", "train.accum_iter=4"])


class _Linear(nn.Module):
    """A tiny model with the wrapper's forward_train, for the step."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, views, labels):
        from gpaco.models.train_output import TrainOutput
        return TrainOutput(None, labels, self.fc(views[0]))


def _one_step(accum: int) -> tuple[dict[str, torch.Tensor], float]:
    torch.manual_seed(0)
    module = _Linear().double()
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    opt = torch.optim.AdamW(module.parameters(), lr=0.1)
    crit = lambda f, labels, logits: nn.functional.cross_entropy(logits, labels)  # noqa: E731
    step = EagerStep(module, crit, opt, torch.amp.GradScaler("cpu", enabled=False),
                     torch.device("cpu"), "none", accum_iter=accum)
    loss = step([x], y)
    return {k: v.clone() for k, v in module.state_dict().items()}, float(loss)


def test_accumulation_gives_the_same_step_as_the_whole_batch():
    whole, loss1 = _one_step(1)
    for accum in (2, 4):
        parts, loss = _one_step(accum)
        assert loss == pytest.approx(loss1, rel=1e-12)  # the batch's mean loss
        for key in whole:
            torch.testing.assert_close(parts[key], whole[key], rtol=1e-12, atol=1e-12)


def test_adamw_warmup_cosine_accumulation_run(tiny_cfg):
    """A whole run with the ViT recipes' machinery on a ResNet: AdamW, per-step warm-up + cosine,
    2 micro-batches per step; the saved lr is the schedule's at each epoch start and the
    optimiser's final lr is the one of the last step."""
    cfg = tiny_cfg("optim.name=adamw", "optim.blr=1e-3", "optim.weight_decay=0.05",
                   "schedule.name=warmup_cosine", "epochs=3", "warmup_epochs=1",
                   "train.accum_iter=2", "method=ce", "views=[cifar_regular]")
    T.train(cfg, Path(cfg.output.dir))
    lr = 1e-3 * 32 / 256
    assert cfg.optim.lr == pytest.approx(lr)
    records = read_metrics(Path(cfg.output.dir))
    assert [r["lr"] for r in records] == pytest.approx([lr_at(e, lr, cfg.schedule)
                                                         for e in range(3)])
    groups = load_checkpoint(Path(cfg.output.dir) / "last.pt")["optimizer"]["param_groups"]
    last = lr_at(2 + 2 / 3, lr, cfg.schedule)  # 3 steps an epoch: the 9th step's lr
    assert all(g["lr"] == pytest.approx(last * g["lr_scale"]) for g in groups)
