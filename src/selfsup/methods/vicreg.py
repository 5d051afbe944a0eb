"""VICReg: invariance, plus variance and covariance terms that keep the embedding from collapsing.

Bardes, Ponce, LeCun, *VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning*, ICLR 2022. Expander of 3 linear layers, loss :func:`~selfsup.losses.vicreg` with weights
25 / 25 / 1, averaged over global/other view pairs.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import Tensor

from ..losses import gather, vicreg
from ..models import mlp
from ..models.encoder import Encoder
from . import register
from ._common import encode, pair_mean, pairs
from .base import Batch, Context, Method, Params


class VICRegParams(Params):
    inv: float = Field(default=25.0, ge=0)
    var: float = Field(default=25.0, ge=0)
    cov: float = Field(default=1.0, ge=0)


@register
class VICReg(Method):
    name = "vicreg"
    paper = "Bardes, Ponce, LeCun 2022, VICReg: Variance-Invariance-Covariance Regularization"
    Params = VICRegParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        zs = [
            gather(z) for z in encode(lambda x: self.projector(self.encoder(x)), views)
        ]  # global batch (DDP)
        return pair_mean(lambda i, j: vicreg(zs[i], zs[j], p.inv, p.var, p.cov), pairs(views)), {}
