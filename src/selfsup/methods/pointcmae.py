"""Point-CMAE: Point-MAE with two masks of each cloud and a contrast between their encodings.

Ren et al. 2024 (Point-CMAE: masked autoencoders with contrast for point clouds). Each cloud is cut into patches once and masked twice, independently;
each mask is encoded and decoded as in Point-MAE (:mod:`selfsup.methods.pointmae`), and

    loss = (CD(mask_1) + CD(mask_2)) / 2
           + contrast_weight * NT-Xent(g(pool(z_1)), g(pool(z_2)); temperature)
           + token_weight * (1 - mean cos(d_1l, d_2l) over patches l hidden in both masks)

with ``CD`` the Chamfer reconstruction of the hidden patches, ``z_k`` the encoder's tokens of the
visible patches of mask ``k``, ``g`` a projection head and ``d_kl`` the decoder's feature of patch
``l``: the global encodings of two partial views of a cloud are contrasted with the other clouds of
the batch, and the features of patches hidden in both should agree. The weights (0.5, 0.5) and
temperature (0.2) are ours for small CPU runs, not the paper's tuned values.
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
    token_weight: float = Field(default=0.5, ge=0)
    """Weight of the agreement of decoder features at patches hidden in both masks."""


@register
class PointCMAE(PointMAE):
    name = "pointcmae"
    paper = "Ren et al. 2024, Point-CMAE (Point-MAE with two masks and a contrast between them)"
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
        return loss, {"rec": float(rec), "contrast": float(con), "token": float(tok)}
