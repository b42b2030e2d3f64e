"""The CUDA-graph step.

On CPU: its SGD equals torch.optim.SGD; its un-captured step equals the eager step; and the step
it would capture (augmentation, forwards, loss, backward, SGD, EMA, queue) contains no operation
that synchronises with the host or copies host data in, the things CUDA-graph capture refuses or
silently freezes. On CUDA: graph replay == eager.
"""

import collections
import copy

import pytest
import torch
from torch import nn

from torch.utils._python_dispatch import TorchDispatchMode

from gpaco.train import step as step_module
from gpaco.train.forward import TrainForward
from gpaco.train.graph_step import GraphedStep
from gpaco.train.schedule import set_lr
from gpaco.train.step import EagerStep, check_graphable
from gpaco.run import build_run as Run
from gpaco.models.train_output import TrainOutput
from gpaco.errors import UserError
from gpaco.tasks.classification.methods import build_criterion, build_model
from gpaco.models import create_backbone


@pytest.mark.parametrize("nesterov", [False, True])
def test_foreach_sgd_equals_torch_sgd(nesterov):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    twin = copy.deepcopy(net)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    ref = torch.optim.SGD(twin.parameters(), **kw)
    opt = torch.optim.SGD(net.parameters(), **kw)
    _step_both(net, twin, opt, ref, steps=4)
    # the buffers are torch.optim.SGD's own state, so checkpoints are interchangeable
    assert all("momentum_buffer" in opt.state[p] for p in net.parameters())


def _step_both(net, twin, opt, ref, steps: int) -> None:
    """`steps` updates of `net` by the graphed step's foreach SGD and of its copy `twin` by
    torch.optim.SGD, at lr 0.1 / (i + 1) through the schedule's set_lr; they must agree."""
    step = GraphedStep(TrainForward(net), nn.Identity(), opt, "none")
    for i in range(steps):
        x = torch.randn(8, 5)
        for model in (net, twin):
            model.zero_grad(set_to_none=True)
            model(x).pow(2).mean().backward()
        set_lr(opt, 0.1 / (i + 1))
        set_lr(ref, 0.1 / (i + 1))
        ref.step()
        step._buffers()
        step._load_lrs()
        step._sgd()
    for a, b in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def _setup(method: str, device: str):
    torch.manual_seed(0)
    params = {"dim": 16, "queue_size": 128} if method in ("paco", "gpaco") else {}
    model = build_model(method, create_backbone("resnet8"), 4, **params).to(device)
    counts = [40, 20, 8, 4]
    crit = build_criterion(method, 4, counts,
                           **({"alpha": 0.05, "temperature": 0.1} if method != "balanced_softmax" else {}))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return model, crit.to(device), opt


def _uncaptured(step: GraphedStep):
    """The graphed step's own computation, run eagerly (what CPU can check of it)."""

    def run(views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        step._buffers()
        step._load_lrs()
        return step._eager(views, labels)

    return run


def _compare_with_eager(method: str, device: str, graphed_step) -> None:
    # 8 steps: 3 eager warm-up steps (the queue is full after 2), then capture and 5 replays. A ReLU network
    # amplifies rounding differences (a flipped unit changes the gradient), so the run is short
    # and the tolerance a little above float32 rounding.
    data = [(torch.rand(2, 64, 3, 16, 16, device=device), torch.randint(0, 4, (64,), device=device))
            for _ in range(8)]
    results = []
    for graphed in (False, True):
        model, crit, opt = _setup(method, device)
        if graphed:
            step = graphed_step(GraphedStep(TrainForward(model), crit, opt, "none"))
        else:
            scaler = torch.amp.GradScaler(device, enabled=False)
            step = EagerStep(TrainForward(model), crit, opt, scaler, torch.device(device), "none")
        losses = [float(step(list(v), y)) for v, y in data]
        results.append((losses, [p.detach().clone() for p in model.parameters()]))
    (l_eager, p_eager), (l_graph, p_graph) = results
    # 2e-5 seen with one intra-op thread (another reduction order): the ReLU chaos above
    assert l_graph == pytest.approx(l_eager, rel=5e-5)
    for a, b in zip(p_graph, p_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("method", ["paco", "gpaco", "balanced_softmax"])
def test_uncaptured_graph_step_matches_eager_on_cpu(method):
    _compare_with_eager(method, "cpu", _uncaptured)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("method", ["paco", "gpaco", "balanced_softmax"])
def test_graphed_step_matches_eager_on_cuda(method):
    torch.backends.cudnn.deterministic = True
    _compare_with_eager(method, "cuda", lambda step: step)


# Host synchronisation (scalar reads, data-dependent shapes) fails during capture; a host tensor
# (torch.tensor inside the step) would be copied in once and then frozen into the graph.
HOST_OPS = {"_local_scalar_dense", "is_nonzero", "equal", "allclose", "nonzero", "masked_select",
            "_unique", "_unique2", "unique_dim", "unique_consecutive", "repeat_interleave",
            "bincount", "histc", "lift_fresh", "lift_fresh_copy"}


class HostOpRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.found: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in HOST_OPS:
            self.found[name] += 1
        if name.startswith("index") and isinstance(args[1], (list, tuple)) and any(
                t is not None and t.dtype in (torch.bool, torch.uint8) for t in args[1]):
            self.found[f"{name} with a boolean mask"] += 1
        return func(*args, **(kwargs or {}))


def test_recorder_catches_host_ops():
    x = torch.randn(6)
    with HostOpRecorder() as rec:
        float(x.sum()), x[x > 0], torch.tensor([1.0])
    assert set(rec.found) == {"_local_scalar_dense", "index with a boolean mask", "lift_fresh"}


@pytest.mark.parametrize("method", ["paco", "gpaco", "ce", "balanced_softmax", "multitask"])
def test_captured_step_has_no_host_ops(method, tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(step_module, "check_graphable", lambda *args: None)  # no CUDA here
    cfg = tiny_cfg(f"method={method}", "data.batched_augment=true", "train.cuda_graph=true",
                   "model.backbone=resnet8", "train.channels_last=true")
    run = Run(cfg, tmp_path / "run")
    assert run.data.augment  # the loader hands raw images: augmentation is part of the step
    step = run.step.step  # inside the ScheduledStep that sets the lr
    assert isinstance(step, GraphedStep) and step.lays_out_inputs
    batches = iter(run.data.train_loader)
    while not step._ready_to_capture():  # the eager warm-up that precedes capture
        step.warmup_left -= 1
        _uncaptured(step)(*next(batches))
    views, labels = next(batches)
    step._buffers()
    step.optimizer.zero_grad(set_to_none=True)
    python_state = _python_scalars(run.model)
    with HostOpRecorder() as rec:
        step._forward_backward(views, labels)
    assert not rec.found, f"host-side operations in the captured step: {dict(rec.found)}"
    # a replay does not run Python: state kept in Python attributes would stop changing
    assert _python_scalars(run.model) == python_state


def _python_scalars(model: nn.Module) -> dict[str, object]:
    return {f"{name}.{key}": value for name, m in model.named_modules()
            for key, value in vars(m).items() if isinstance(value, (bool, int, float))}


def _two_group_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    groups = [{"params": net[0].parameters(), "lr_scale": 1.0, "weight_decay": 5e-4},
              {"params": net[2].parameters(), "lr_scale": 0.1, "weight_decay": 0.0}]
    return net, groups


def test_per_group_lr_scales_in_the_graphed_step():
    net, groups = _two_group_net()
    twin = copy.deepcopy(net)
    twin_groups = [{**g, "params": list(p.parameters())} for g, p in zip(groups, (twin[0], twin[2]))]
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(twin_groups, lr=0.1, momentum=0.9)
    _step_both(net, twin, opt, ref, steps=3)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.01 / 3)


def test_per_group_lr_scales_in_the_eager_step():
    net, groups = _two_group_net()
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(groups, lr=0.1)  # no momentum: the update is -lr * scale * grad
    set_lr(opt, 0.1)
    x = torch.randn(8, 5)

    module = nn.Module()
    module.forward = lambda views, labels: TrainOutput(None, None, net(views[0]))
    criterion = lambda f, l, y: y.pow(2).mean()  # noqa: E731
    grads = torch.autograd.grad(net(x).pow(2).mean(), list(net.parameters()))
    EagerStep(module, criterion, opt, torch.amp.GradScaler("cpu", enabled=False),
              torch.device("cpu"), "none")([x], None)
    scales = [1.0, 1.0, 0.1, 0.1]
    decays = [5e-4, 5e-4, 0.0, 0.0]
    for p, p0, g, scale, wd in zip(net.parameters(), before, grads, scales, decays):
        torch.testing.assert_close(p.detach(), p0 - 0.1 * scale * (g + wd * p0))


@pytest.mark.parametrize("make, message", [
    (lambda ps: torch.optim.AdamW(ps), "SGD only, not AdamW"),
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5), "without dampening"),
])
def test_graphed_step_refuses_what_it_cannot_run(make, message):
    opt = make(nn.Linear(2, 2).parameters())
    with pytest.raises(UserError, match=message):
        check_graphable(torch.device("cuda"), "none", opt)
    sgd = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(UserError, match="needs a CUDA device"):
        check_graphable(torch.device("cpu"), "none", sgd)
    with pytest.raises(UserError, match="amp=bf16 or none"):
        check_graphable(torch.device("cuda"), "fp16", sgd)



def test_fp16_autocast_on_the_cpu_is_refused(tiny_cfg, tmp_path):
    with pytest.raises(UserError, match="amp=fp16 needs a CUDA device"):
        Run(tiny_cfg("train.amp=fp16"), tmp_path / "run")
