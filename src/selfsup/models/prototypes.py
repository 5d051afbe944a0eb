"""Prototypes and projection heads of the clustering and self-distillation family.

- :class:`Prototypes`: K unit-norm prototype vectors ``C`` scoring normalised embeddings, ``z C^T``
  (SwAV's ``nn.Linear(D, K, bias=False)``, renormalised after every step). ``frozen=True`` in
  ``forward`` scores with detached prototypes, so they get no gradient that step: SwAV freezes them
  for the first iterations (``freeze_prototypes_niters``, one epoch), DeepCluster-v2 always (its
  prototypes are the k-means centroids).
- :class:`DINOHead`: DINO's head (``facebookresearch/dino``, ``vision_transformer.py``): a 3-layer
  GELU MLP to a bottleneck, L2 normalisation, then a weight-normalised linear layer to K outputs
  whose norms are fixed to 1 (``norm_last_layer``); its last layer can be frozen the same way
  (DINO's ``freeze_last_layer``, the first epoch).
- :func:`spherical_kmeans`: k-means on the sphere (cosine assignments, renormalised means), as in
  DeepCluster-v2's ``cluster_memory`` (``facebookresearch/swav``, ``main_deepclusterv2.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Prototypes(nn.Module):
    """``k`` prototypes of dimension ``dim``; ``forward(z)`` returns ``z C^T`` (B, k)."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        if k < 1 or dim < 1:
            raise ValueError(f"prototypes need k >= 1 and dim >= 1, got {k}, {dim}")
        w = torch.empty(k, dim)
        nn.init.kaiming_uniform_(w, a=5**0.5)  # nn.Linear's initialisation, as in SwAV
        self.weight = nn.Parameter(F.normalize(w, dim=1))

    def forward(self, z: Tensor, frozen: bool = False) -> Tensor:
        w = self.weight.detach() if frozen else self.weight
        return z @ w.t().to(z.dtype)

    @torch.no_grad()
    def normalise_(self) -> None:
        """Project every prototype back onto the unit sphere (after each optimiser step)."""
        self.weight.copy_(F.normalize(self.weight, dim=1))


def _trunc_normal_(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class NormedLinear(nn.Module):
    """Weight-normalised bias-free linear layer ``W = g v / ||v||`` (rows), ``g`` fixed to 1 when
    ``norm`` (DINO's ``norm_last_layer``); ``frozen=True`` uses detached weights (no gradient)."""

    def __init__(self, in_dim: int, out_dim: int, norm: bool = True) -> None:
        super().__init__()
        v = torch.empty(out_dim, in_dim)
        nn.init.kaiming_uniform_(v, a=5**0.5)
        self.v = nn.Parameter(v)
        self.g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not norm)

    def forward(self, h: Tensor, frozen: bool = False) -> Tensor:
        v, g = (self.v.detach(), self.g.detach()) if frozen else (self.v, self.g)
        w = g * v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return h @ w.t().to(h.dtype)


class DINOHead(nn.Module):
    """MLP (``layers`` linear layers, GELU; BatchNorm before each GELU with ``use_bn``, the authors'
    ``use_bn_in_head``) -> bottleneck -> L2 norm -> :class:`NormedLinear`."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 2048,
        bottleneck: int = 256,
        layers: int = 3,
        norm_last_layer: bool = True,
        use_bn: bool = False,
    ) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(max(layers, 1) - 1):
            mods += [nn.Linear(d, hidden), *([nn.BatchNorm1d(hidden)] if use_bn else []), nn.GELU()]
            d = hidden
        mods.append(nn.Linear(d, bottleneck))
        self.mlp = nn.Sequential(*mods)
        self.mlp.apply(_trunc_normal_)
        self.bottleneck_dim = bottleneck
        self.last_layer = NormedLinear(bottleneck, out_dim, norm_last_layer)

    def bottleneck(self, x: Tensor) -> Tensor:
        """The normalised bottleneck feature (..., bottleneck)."""
        return F.normalize(self.mlp(x), dim=-1)

    def forward(self, x: Tensor, frozen_last: bool = False) -> Tensor:
        out: Tensor = self.last_layer(self.bottleneck(x), frozen_last)
        return out


@torch.no_grad()
def spherical_kmeans(
    x: Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """k-means of the unit vectors ``x`` (N, D) by cosine similarity: ``(centroids (k, D) unit
    norm, assignments (N,))``. Centroids start at ``k`` distinct random rows; an empty cluster keeps
    its centroid; ``iters`` mean steps, then a final assignment (DeepCluster-v2: 10)."""
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= samples, got k={k} for {n} samples")
    x = x.float()
    perm = torch.randperm(n, generator=generator)[:k].to(x.device)
    c = x[perm].clone()
    for it in range(iters + 1):
        assign = (x @ c.t()).argmax(dim=1)
        if it == iters:
            break
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        full = counts > 0
        c[full] = sums[full] / counts[full].unsqueeze(1).to(x.dtype)
        c = F.normalize(c, dim=1)
    return c, assign
