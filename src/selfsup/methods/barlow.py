"""Barlow Twins: make the cross-correlation of two views' embeddings close to the identity.

Zbontar et al., *Barlow Twins: Self-Supervised Learning via Redundancy Reduction*, ICML 2021.
Projector of 3 linear layers (BatchNorm and ReLU between), loss
:func:`~selfsup.losses.barlow_twins` with lambda = 5e-3, averaged over global/other view pairs.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import Tensor

from ..losses import barlow_twins, gather
from ..models import mlp
from ..models.encoder import Encoder
from . import register
from ._common import encode, pair_mean, pairs
from .base import Batch, Context, Method, Params


class BarlowParams(Params):
    lambda_: float = Field(default=5e-3, ge=0)
    """Weight of the off-diagonal terms (the paper's 5e-3 at 8192 dimensions)."""


@register
class BarlowTwins(Method):
    name = "barlow"
    paper = "Zbontar et al. 2021, Barlow Twins: Self-Supervised Learning via Redundancy Reduction"
    Params = BarlowParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = [
            gather(z) for z in encode(lambda x: self.projector(self.encoder(x)), views)
        ]  # global batch (DDP)
        return pair_mean(
            lambda i, j: barlow_twins(zs[i], zs[j], self.params.lambda_), pairs(views)
        ), {}
