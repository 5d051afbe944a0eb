"""SimCLR: encoder + projection head + NT-Xent over all views.

Chen et al., *A Simple Framework for Contrastive Learning of Visual Representations*, ICML 2020.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..losses import nt_xent
from ..models import projection_head
from . import register
from .base import Method, Params


class SimCLRParams(Params):
    temperature: float = Field(default=0.2, gt=0)


@register
class SimCLR(Method):
    name = "simclr"
    paper = "Chen et al. 2020, A Simple Framework for Contrastive Learning of Visual Representations"
    Params = SimCLRParams

    def __init__(self, encoder, params, ctx):
        super().__init__(encoder, params, ctx)
        self.head = projection_head(encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim)

    def project(self, views):
        n = len(views)
        z = self.head(self.encoder(torch.cat(views)))
        return z.chunk(n)

    def contrast(self, z1, z2, batch):
        return nt_xent(z1, z2, self.params.temperature)

    def forward(self, views, batch):
        zs = self.project(views)
        pairs = [(i, j) for i in range(len(zs)) for j in range(i + 1, len(zs))]
        loss = sum(self.contrast(zs[i], zs[j], batch) for i, j in pairs) / len(pairs)
        return loss, {}
