"""Small helpers shared by the methods of this package (not a method module: not registered).

- :func:`encode` runs a network on views of possibly different sizes (multi-crop), one batched call
  per size, and returns one embedding per view in the original order.
- :func:`global_count`, :func:`pairs`, :func:`pair_mean`: the first views that share the first
  view's size are the
  *global* views; losses pair every global view with every other view (SimCLR-style unordered
  pairs, or BYOL-style ordered target/online pairs). With equal sizes every view is global.
- :func:`frozen_copy`, :func:`ema_update`, :func:`cosine_momentum`: momentum (target) networks.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


def encode(fn: Callable[[Tensor], Tensor], views: list[Tensor]) -> list[Tensor]:
    """``[fn(v) for v in views]``, batched: one call of ``fn`` per distinct view shape."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.shape), []).append(i)
    out: dict[int, Tensor] = {}
    for idx in groups.values():
        z = fn(torch.cat([views[i] for i in idx]))
        for i, zi in zip(idx, z.chunk(len(idx)), strict=True):
            out[i] = zi
    return [out[i] for i in range(len(views))]


def global_count(views: list[Tensor]) -> int:
    """How many leading views have the first view's shape (the global crops)."""
    g = 1
    while g < len(views) and views[g].shape == views[0].shape:
        g += 1
    return g


def pairs(views: list[Tensor], ordered: bool = False) -> list[tuple[int, int]]:
    """Pairs (i, j), i a global view, j any other view. Unordered (i < j when both are global)
    for symmetric losses; ordered (every i != j, i global as target) for predictor losses."""
    g, n = global_count(views), len(views)
    if ordered:
        return [(i, j) for i in range(g) for j in range(n) if j != i]
    return [(i, j) for i in range(g) for j in range(i + 1, n)]


def pair_mean(loss: Callable[[int, int], Tensor], prs: list[tuple[int, int]]) -> Tensor:
    """The mean of ``loss(i, j)`` over the view pairs ``prs`` (see :func:`pairs`)."""
    total = loss(*prs[0])
    for i, j in prs[1:]:
        total = total + loss(i, j)
    return total / len(prs)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy without gradients (a momentum/target network)."""
    c = copy.deepcopy(module)
    c.requires_grad_(False)
    return c


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter."""
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.lerp_(po, 1.0 - momentum)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule ``1 - (1 - base) (cos(pi k / K) + 1) / 2``: ``base`` at k = 0, 1 at k = K."""
    t = min(max(step, 0) / max(total_steps, 1), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0
