"""Ghost batch norm: groups of G behave like separate BatchNorm batches, buffers average."""

import copy

import pytest
import torch
from torch import nn

from gpaco.errors import UserError
from gpaco.models import GhostBatchNorm1d, GhostBatchNorm2d, convert_to_ghost_bn


def _bn_pair(cls=nn.BatchNorm2d, ghost=GhostBatchNorm2d, c=3, g=4):
    torch.manual_seed(0)
    bn = cls(c)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    gbn = ghost(c, g)
    gbn.load_state_dict(bn.state_dict())
    return bn, gbn


@pytest.mark.parametrize("shape,cls,ghost", [((12, 3, 5, 5), nn.BatchNorm2d, GhostBatchNorm2d),
                                             ((12, 3), nn.BatchNorm1d, GhostBatchNorm1d)])
def test_each_group_is_a_separate_batchnorm_batch_and_buffers_are_the_mean(shape, cls, ghost):
    bn, gbn = _bn_pair(cls, ghost)
    x = torch.randn(shape) * 3 + 1
    y = gbn(x)
    # Reference: one BatchNorm per group of 4 (what each of 3 processes would run).
    outs, means, vars_ = [], [], []
    for chunk in x.split(4):
        ref = copy.deepcopy(bn)
        outs.append(ref(chunk))
        means.append(ref.running_mean)
        vars_.append(ref.running_var)
    torch.testing.assert_close(y, torch.cat(outs), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gbn.running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(gbn.running_var, torch.stack(vars_).mean(0))
    assert int(gbn.num_batches_tracked) == 1


def test_gradients_match_separate_batchnorms():
    bn, gbn = _bn_pair()
    x = torch.randn(8, 3, 4, 4, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    (gbn(x) ** 2).sum().backward()
    refs = [copy.deepcopy(bn) for _ in range(2)]
    sum(((r(c) ** 2).sum() for r, c in zip(refs, x2.split(4)))).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gbn.weight.grad, refs[0].weight.grad + refs[1].weight.grad,
                               rtol=1e-4, atol=1e-5)


def test_eval_mode_is_plain_batchnorm_and_state_dicts_are_interchangeable():
    bn, gbn = _bn_pair()
    x = torch.randn(8, 3, 4, 4)
    gbn(x), bn(x)
    bn.eval(), gbn.eval()
    assert set(bn.state_dict()) == set(gbn.state_dict())
    bn.load_state_dict(gbn.state_dict())
    torch.testing.assert_close(gbn(x[:3]), bn(x[:3]))


def test_batch_must_be_a_multiple_of_the_group():
    _, gbn = _bn_pair()
    with pytest.raises(UserError, match="multiple of 4"):
        gbn(torch.randn(6, 3, 2, 2))
    with pytest.raises(UserError, match=">= 2"):
        GhostBatchNorm2d(3, 1)


def test_convert_keeps_weights_buffers_and_frozen_flags():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 5), nn.BatchNorm1d(5))
    net(torch.randn(8, 3, 6, 6))  # non-trivial running stats
    net[1].weight.requires_grad_(False)
    before = copy.deepcopy(net.state_dict())
    out = convert_to_ghost_bn(net, 4)
    assert out is net
    assert isinstance(net[1], GhostBatchNorm2d) and isinstance(net[4], GhostBatchNorm1d)
    assert not net[1].weight.requires_grad and net[4].weight.requires_grad
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
