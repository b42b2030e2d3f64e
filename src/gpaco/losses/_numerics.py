"""Dtype handling and a memory-lean row log-sum-exp shared by the losses."""

from __future__ import annotations

import torch
from torch import Tensor

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def upcast(tensor: Tensor) -> Tensor:
    """fp16/bf16 -> fp32 so that exp/log/sums accumulate in fp32; fp32/fp64 pass unchanged."""
    return tensor.float() if tensor.dtype in _LOW_PRECISION else tensor


class _RowLogSumExp(torch.autograd.Function):
    """torch.logsumexp(x, dim=1) whose backward builds one (N, C) buffer instead of three."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        lse = torch.logsumexp(x, dim=1)
        ctx.save_for_backward(x, lse)
        return lse

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        x, lse = ctx.saved_tensors
        return (x - lse[:, None]).exp_().mul_(grad[:, None])


def row_logsumexp(x: Tensor) -> Tensor:
    """log sum_c exp(x[:, c]) for a 2-D tensor."""
    return _RowLogSumExp.apply(x)
