"""NNCLR: the positive of each view is its nearest neighbour in a support queue of past embeddings.

Dwibedi et al., *With a Little Help from My Friends: Nearest-Neighbor Contrastive Learning of Visual
Representations*, ICCV 2021. Projector (3 layers, BatchNorm on the output) and predictor; with
``NN`` the nearest neighbour in the support set by cosine similarity::

    L = ( NT-Xent(NN(z1), p2) + NT-Xent(NN(z2), p1) ) / 2

(t = 0.1 in the paper). After each step the normalised ``z1`` of the batch is enqueued. Two views
only: the paper uses no multi-crop, so more views or local crops are refused at build time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..losses import FeatureQueue, gather, nearest_neighbour, nt_xent
from ..models import mlp
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params


class NNCLRParams(Params):
    temperature: float = Field(default=0.1, gt=0)
    queue_size: int = Field(default=4096, ge=1)
    """Support set size (98304 on ImageNet in the paper)."""


@register
class NNCLR(Method):
    name = "nnclr"
    paper = (
        "Dwibedi et al. 2021, With a Little Help from My Friends: Nearest-Neighbor "
        "Contrastive Learning"
    )
    Params = NNCLRParams
    needs = Needs(n_views=2)

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3, last_bn=True)
        self.predictor = mlp(m.proj_dim, m.proj_hidden, m.proj_dim, layers=2)
        self.support = FeatureQueue(params.queue_size, m.proj_dim)
        self._push: torch.Tensor | None = None

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        z1, z2 = self.projector(self.encoder(torch.cat(views[:2]))).chunk(2)
        p1, p2 = self.predictor(torch.cat([z1, z2])).chunk(2)
        q = self.support.queue
        t = self.params.temperature
        loss = (
            nt_xent(nearest_neighbour(z1, q), p2, t) + nt_xent(nearest_neighbour(z2, q), p1, t)
        ) / 2
        self._push = gather(F.normalize(z1.detach(), dim=1))  # every rank's embeddings (DDP)
        return loss, {}

    def after_step(self, step: int, total_steps: int) -> None:
        if self._push is not None:
            self.support.push(self._push)
            self._push = None
