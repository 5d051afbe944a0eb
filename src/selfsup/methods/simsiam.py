"""SimSiam: a siamese network with a predictor and a stop-gradient, no negatives, no momentum.

Chen & He, *Exploring Simple Siamese Representation Learning*, CVPR 2021. Projector: 3 layers with
BatchNorm on its output; predictor: a bottleneck MLP (hidden = dim / 4). Loss
``D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2`` with ``D = -cosine`` (extended to every global/other
view pair with multi-crop views).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..losses import negative_cosine
from ..models import mlp
from ..models.encoder import Encoder
from . import register
from ._common import encode, pair_mean, pairs
from .base import Batch, Context, Method, Params


class SimSiamParams(Params):
    pass


@register
class SimSiam(Method):
    name = "simsiam"
    paper = "Chen & He 2021, Exploring Simple Siamese Representation Learning"
    Params = SimSiamParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3, last_bn=True)
        self.predictor = mlp(m.proj_dim, max(m.proj_dim // 4, 1), m.proj_dim, layers=2)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = encode(lambda x: self.projector(self.encoder(x)), views)
        loss = pair_mean(
            lambda i, j: negative_cosine(self.predictor(zs[j]), zs[i].detach()),
            pairs(views, ordered=True),
        )
        return loss, {}
