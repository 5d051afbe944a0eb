"""COLA: contrastive learning of general-purpose audio representations.

Saeed, Grangier, Zeghidour, ICASSP 2021 (https://arxiv.org/abs/2010.10915). Two random segments of
one clip are an anchor and its positive; the other clips of the batch give the negatives. Each
segment's embedding passes through COLA's head (a linear layer, layer normalisation, tanh) and
pairs are scored by a learned bilinear similarity ``g(a)^T W g(p)``; the loss is the in-batch
cross-entropy of :func:`~selfsup.losses.cola.bilinear_loss`. Views: the method's view preset
``cola`` (random segments only, as in the paper) where the data has it (sound), else the data's
default. With more than two views every other view is a positive of the first.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.cola import bilinear_loss
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params


class COLAParams(Params):
    dim: int = Field(default=512, ge=1)
    """Width of the head (COLA: 512)."""
    symmetric: bool = False
    """Also classify anchors for each positive and average the two directions (COLA: one)."""


@register
class COLA(Method):
    name = "cola"
    paper = "Saeed et al. 2021, Contrastive Learning of General-Purpose Audio Representations"
    Params = COLAParams
    needs = Needs(view_preset="cola")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d = params.dim
        self.head = nn.Sequential(nn.Linear(encoder.out_dim, d), nn.LayerNorm(d), nn.Tanh())
        self.similarity = nn.Linear(d, d, bias=False)  # W of s(a, p) = a^T W p

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        z = [self.head(self.encoder(v)).float() for v in views]
        w = self.similarity.weight.float()
        losses = [bilinear_loss(z[0], p, w, self.params.symmetric) for p in z[1:]]
        loss = torch.stack(losses).mean()
        with torch.no_grad():
            acc = (z[0] @ w @ z[1].T).argmax(1).eq(torch.arange(len(z[0]), device=z[0].device))
        return loss, {"pair_acc": float(acc.float().mean())}
