"""Gather with gradient: the one helper every contrastive loss uses under ``torch.distributed``.

Each rank holds B local embeddings. :func:`gather` returns the (world_size x B) embeddings of all
ranks in rank order, so a local anchor can use every rank's samples as negatives. Forward is an
``all_gather``; backward sums the incoming gradients over ranks (``all_reduce``) and keeps this
rank's slice, because each rank's loss depends on every rank's embeddings.

Convention: every loss here returns, on each rank, a value whose *mean over ranks* is the loss of
the whole global batch. DDP averages parameter gradients over ranks, so training with R ranks of B
samples gives the same loss and parameter gradients as one process with R x B samples. (The
gradient of one rank's local embeddings is R times that of the single-process loss, before DDP's
averaging.) All ranks must hold the same number of samples (use ``drop_last``).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        rank, size = world()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather(x: Tensor) -> Tensor:
    """All ranks' ``x`` concatenated along dim 0 (rank order), differentiable; ``x`` itself when
    not distributed. Tensors that need no gradient are gathered without the autograd node."""
    _, size = world()
    if size == 1:
        return x
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)
    return cast(Tensor, _GatherWithGrad.apply(x))  # type: ignore[no-untyped-call]


def all_sum(x: Tensor) -> Tensor:
    """Sum of a (detached) tensor over ranks; ``x`` when not distributed."""
    _, size = world()
    if size == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x
