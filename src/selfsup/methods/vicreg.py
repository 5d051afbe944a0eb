"""VICReg: invariance, plus variance and covariance terms that keep the embedding from collapsing.

Bardes, Ponce, LeCun, *VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning*, ICLR 2022. Expander of 3 linear layers, loss :func:`~selfsup.losses.vicreg` with weights
25 / 25 / 1, averaged over global/other view pairs.
"""

from __future__ import annotations

from pydantic import Field

from ..losses import vicreg
from ..models import mlp
from . import register
from ._common import encode, pairs
from .base import Method, Params


class VICRegParams(Params):
    inv: float = Field(default=25.0, ge=0)
    var: float = Field(default=25.0, ge=0)
    cov: float = Field(default=1.0, ge=0)


@register
class VICReg(Method):
    name = "vicreg"
    paper = "Bardes, Ponce, LeCun 2022, VICReg: Variance-Invariance-Covariance Regularization"
    Params = VICRegParams

    def __init__(self, encoder, params, ctx):
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3)

    def forward(self, views, batch):
        p = self.params
        zs = encode(lambda x: self.projector(self.encoder(x)), views)
        prs = pairs(views)
        return sum(vicreg(zs[i], zs[j], p.inv, p.var, p.cov) for i, j in prs) / len(prs), {}
