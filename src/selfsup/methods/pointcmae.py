"""Point-CMAE: Point-MAE with two masks of each cloud and a contrast between their encodings.

Ren, Mei, Paudel, Wang, Li, Liu, Cucchiara, Van Gool, Sebe, *Bringing Masked Autoencoders
Explicit Contrastive Properties for Point Cloud Self-Supervised Learning*, ACCV 2024 (Point-CMAE;
authors' code ``Amazingren/Point-CMAE``, ``models/Point_CMAE.py``). Each cloud is cut into patches
once and masked twice, independently; each mask is encoded and decoded as in Point-MAE
(:mod:`selfsup.methods.pointmae`), and

    loss = (CD(mask_1) + CD(mask_2)) / 2
           + token_weight * (1 - mean cos(d_1l, d_2l) over patches l hidden in both masks)
           + contrast_weight * NT-Xent(g(pool(z_1)), g(pool(z_2)); temperature)

with ``CD`` the Chamfer reconstruction of the hidden patches, ``d_kl`` the decoder's feature of
patch ``l`` under mask ``k``, ``z_k`` the encoder's tokens of the visible patches of mask ``k`` and
``g`` a projection head. The decoder-feature term is the authors' contrast (weight 1); the global
NT-Xent between the two masked encodings (weight 0.5, temperature 0.2) is ours, off with
``params.contrast_weight=0``. Known differences from the authors' code: one decoder serves both
masks (theirs: one per mask); the reconstruction terms are averaged (theirs: summed); a patch's
feature is compared with the same patch's feature under the other mask (their code compares it
with every patch's feature of the other branch, ``comask`` expanded over the columns of the
cosine matrix).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from ..losses import nt_xent
from ..losses.masked import masked_token_agreement
from ..models import projection_head
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context
from .mae import normalised
from .pointmae import PointMAE, PointMAEParams


class PointCMAEParams(PointMAEParams):
    contrast_weight: float = Field(default=0.5, ge=0)
    """Weight of the NT-Xent term between the two masks' pooled encodings."""
    temperature: float = Field(default=0.2, gt=0)
    token_weight: float = Field(default=1.0, ge=0)
    """Weight of the agreement of decoder features at patches hidden in both masks."""


@register
class PointCMAE(PointMAE):
    name = "pointcmae"
    paper = (
        "Ren et al. 2024, Bringing Masked Autoencoders Explicit Contrastive Properties for "
        "Point Cloud Self-Supervised Learning (Point-CMAE)"
    )
    Params = PointCMAEParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        dim = self.transformer.out_dim
        self.head = projection_head(dim, ctx.model.proj_hidden, ctx.model.proj_dim)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        centres, patches = self.transformer.patches(normalised(self.encoder, views[0]))
        rec1, m1, z1, d1 = self.masked_pass(centres, patches)
        rec2, m2, z2, d2 = self.masked_pass(centres, patches)
        rec = (rec1 + rec2) / 2
        g1 = self.head(self.transformer.pool(z1)).float()
        g2 = self.head(self.transformer.pool(z2)).float()
        with torch.autocast(g1.device.type, enabled=False):
            con = nt_xent(g1, g2, p.temperature)
        tok = masked_token_agreement(d1.float(), d2.float(), m1 * m2)
        loss = rec + p.contrast_weight * con + p.token_weight * tok
        logs = {
            "rec": float(rec.detach()),
            "contrast": float(con.detach()),
            "token": float(tok.detach()),
        }
        return loss, logs
