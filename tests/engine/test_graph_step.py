"""The CUDA-graph step: its SGD equals torch.optim.SGD (CPU), and graph == eager (CUDA only)."""

import copy

import pytest
import torch
from torch import nn

from gpaco.engine.graph_step import GraphedStep
from gpaco.engine.loop import TrainForward, eager_step
from gpaco.losses import build_criterion
from gpaco.models import build_model, create_backbone


@pytest.mark.parametrize("nesterov", [False, True])
def test_foreach_sgd_equals_torch_sgd(nesterov):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    twin = copy.deepcopy(net)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    ref = torch.optim.SGD(twin.parameters(), **kw)
    opt = torch.optim.SGD(net.parameters(), **kw)
    step = GraphedStep(TrainForward(net), nn.Identity(), opt, "none")
    for i in range(4):
        x = torch.randn(8, 5)
        for model in (net, twin):
            model.zero_grad(set_to_none=True)
            model(x).pow(2).mean().backward()
        ref.param_groups[0]["lr"] = opt.param_groups[0]["lr"] = 0.1 / (i + 1)
        ref.step()
        step._buffers()
        step.set_lr(opt.param_groups[0]["lr"])
        step._sgd()
    for a, b in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # the buffers are torch.optim.SGD's own state, so checkpoints are interchangeable
    assert all("momentum_buffer" in opt.state[p] for p in net.parameters())


def _setup(method: str, device: str):
    torch.manual_seed(0)
    params = {"dim": 16, "queue_size": 32} if method in ("paco", "gpaco") else {}
    model = build_model(method, create_backbone("resnet8"), 4, **params).to(device)
    counts = [40, 20, 8, 4]
    crit = build_criterion(method, num_classes=4, class_counts=counts,
                           **({"alpha": 0.05, "temperature": 0.1} if method != "balanced_softmax" else {}))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return model, crit.to(device), opt


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("method", ["paco", "gpaco", "balanced_softmax"])
def test_graphed_step_matches_eager_on_cuda(method):
    torch.backends.cudnn.deterministic = True
    data = [(torch.rand(2, 16, 3, 16, 16, device="cuda"), torch.randint(0, 4, (16,), device="cuda"))
            for _ in range(12)]
    results = []
    for graphed in (False, True):
        model, crit, opt = _setup(method, "cuda")
        if graphed:
            step = GraphedStep(TrainForward(model), crit, opt, "none")
        else:
            scaler = torch.amp.GradScaler("cuda", enabled=False)
            step = eager_step(TrainForward(model), crit, opt, scaler, torch.device("cuda"), "none")
        losses = [float(step(list(v), y)) for v, y in data]
        results.append((losses, [p.detach().clone() for p in model.parameters()]))
    (l_eager, p_eager), (l_graph, p_graph) = results
    assert l_graph == pytest.approx(l_eager, rel=1e-4)
    for a, b in zip(p_graph, p_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
