"""Ghost batch norm: batch-norm statistics over fixed groups of G samples inside a larger batch.

Definition (training mode, input of B = n * G samples, groups = consecutive runs of G rows:
rows [0, G), [G, 2G), ...):
- each group g is normalised with its own mean mu_g and biased variance s2_g over
  (its G samples x spatial positions), then the shared affine (weight, bias) is applied;
- the running statistics take one update per forward, with the mean over groups of what a
  plain BatchNorm would have used for each group:
      running_mean <- (1 - f) running_mean + f * mean_g(mu_g)
      running_var  <- (1 - f) running_var  + f * mean_g(unbiased s2_g)
  with f = momentum (or 1 / num_batches_tracked when momentum is None), as in BatchNorm.
- evaluation mode (or track_running_stats with no buffers) is plain BatchNorm.

Why this is the multi-GPU statistic: under DDP each process runs plain BatchNorm on its local
batch. With G = the per-process batch, a one-process run over the global batch laid out as
[process 0's samples; process 1's; ...] normalises exactly the same groups. The running-stat
update is linear in the group statistics, so averaging the per-process running buffers over the
processes (gpaco.train.parallel does it at every epoch end) gives the same buffers as one
process with ghost groups. N processes with ghost_bn=G, any N with G | (B / N), equal one
process with ghost_bn=G.

The module keeps BatchNorm's parameters and buffers (same state-dict keys), so checkpoints move
freely between ghost and plain batch norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from gpaco.errors import UserError


class _GhostBatchNorm(_BatchNorm):
    def __init__(self, num_features: int, group_size: int, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        if not isinstance(group_size, int) or group_size < 2:
            raise UserError(
                f"ghost batch norm group size must be an integer >= 2, got {group_size!r}")
        self.group_size = group_size

    def extra_repr(self) -> str:
        return super().extra_repr() + f", group_size={self.group_size}"

    def _factor(self) -> float:
        """BatchNorm's exponential_average_factor, after counting this forward."""
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        use_batch_stats = self.training or self.running_mean is None
        if not use_batch_stats:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        batch, g = x.shape[0], self.group_size
        if batch % g:
            raise UserError(f"ghost batch norm with groups of {g} got a batch of {batch}, not a "
                            f"multiple of {g} (model.ghost_bn must divide the per-process batch)")
        n, c = batch // g, x.shape[1]
        # Statistics in fp32 whatever the autocast dtype, as cuDNN batch norm does.
        xg = x.float().reshape(n, g, c, -1)  # (groups, G, C, spatial)
        var, mean = torch.var_mean(xg, dim=(1, 3), correction=0, keepdim=True)
        y = (xg - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.float().view(1, 1, c, 1) + self.bias.float().view(1, 1, c, 1)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running(mean.detach(), var.detach(), g * xg.shape[3])
        return y.reshape(x.shape).to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, count: int) -> None:
        f = self._factor()
        group_mean = mean.flatten(1).mean(0)
        group_var = (var * (count / max(count - 1, 1))).flatten(1).mean(0)
        self.running_mean.mul_(1 - f).add_(group_mean.to(self.running_mean.dtype), alpha=f)
        self.running_var.mul_(1 - f).add_(group_var.to(self.running_var.dtype), alpha=f)


class GhostBatchNorm1d(_GhostBatchNorm):
    """BatchNorm1d over ghost groups of `group_size` samples (see the module docstring)."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class GhostBatchNorm2d(_GhostBatchNorm):
    """BatchNorm2d over ghost groups of `group_size` samples (see the module docstring)."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")


_GHOST = {nn.BatchNorm1d: GhostBatchNorm1d, nn.BatchNorm2d: GhostBatchNorm2d}


def convert_to_ghost_bn(module: nn.Module, group_size: int) -> nn.Module:
    """Replace every BatchNorm1d/2d in `module` by its ghost version (weights, buffers and
    requires_grad kept); returns the converted module (a new object if `module` itself is a BN).
    """
    kind = _GHOST.get(type(module))
    if kind is not None:
        ghost = kind(module.num_features, group_size, module.eps, module.momentum, module.affine,
                     module.track_running_stats)
        ghost.load_state_dict(module.state_dict())
        ghost.to(device=_device_of(module))
        if module.affine:
            ghost.weight.requires_grad_(module.weight.requires_grad)
            ghost.bias.requires_grad_(module.bias.requires_grad)
        ghost.train(module.training)
        return ghost
    for name, child in module.named_children():
        converted = convert_to_ghost_bn(child, group_size)
        if converted is not child:
            setattr(module, name, converted)
    return module


def _device_of(module: nn.Module) -> torch.device:
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")
