"""cmae: two random masks of the same images, both reconstructed, plus a contrastive term between
their encodings; after Point-CMAE (Ren et al. 2024), on image patches. Point-CMAE's released code
keeps the reconstructions and the agreement of features at patches hidden in both masks
(``token_weight``) and, as its abstract says, finds that plain contrastive learning added to MAE
hurts; the NT-Xent term (``contrast_weight``, on by default here) is this project's addition.
``contrast_weight=0 token_weight=0.5`` is the setting closest to Point-CMAE.

**Not** the image CMAE of Huang et al. 2022 despite the name (kept so that existing recipes run):
that method contrasts the masked view's encoding with an EMA target network's encoding of an
unmasked, pixel-shifted view, through a feature decoder, projector and predictor (t = 0.07, mask
ratio 0.65); none of that is here. Masked reconstruction teaches local detail, the contrast between
two masked views of a sample makes the global feature invariant to which parts are hidden:

    loss = (rec(mask_1) + rec(mask_2)) / 2
           + contrast_weight * NT-Xent(g(pool(z_1)), g(pool(z_2)); temperature)
           + token_weight * (1 - mean cos(d_1l, d_2l) over patches l masked in both views)

``rec`` is MAE's normalised-pixel loss on masked patches, ``z_k`` the ViT encoding of the visible
patches of mask ``k``, ``g`` a projection head, ``d_kl`` the decoder's feature of patch ``l`` (the
Point-CMAE agreement of features of patches hidden in both views; off by default).
``two_views=True`` masks the first two augmented views instead of the first view twice.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field
from torch import Tensor

from ..losses import nt_xent
from ..losses.masked import masked_token_agreement
from ..models import projection_head
from ..models.encoder import Encoder
from ..models.vit import ViT
from . import register
from .base import Batch, Context
from .mae import MAE, MAEParams, normalised


class CMAEParams(MAEParams):
    contrast_weight: float = Field(default=0.5, ge=0)
    """Weight of the contrastive term between the two masked views."""
    temperature: float = Field(default=0.2, gt=0)
    token_weight: float = Field(default=0.0, ge=0)
    """Weight of the agreement of decoder features at patches masked in both views (Point-CMAE)."""
    two_views: bool = False
    """Mask the first two augmented views (True) or the first view twice (False: the same input)."""


@register
class CMAE(MAE):
    name = "cmae"
    paper = (
        "Ren et al. 2024, Point-CMAE's objective on image patches (not Huang et al.'s image CMAE)"
    )
    Params = CMAEParams
    views_used = 1

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.head = projection_head(encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        x1 = normalised(self.encoder, views[0])
        x2 = normalised(self.encoder, views[1]) if p.two_views and len(views) > 1 else x1
        x = torch.cat([x1, x2])  # one batched pass; the masks of the two halves are independent
        rec, mask, z, dec = self.masked_pass(x)
        vit = cast(ViT, self.encoder.backbone)
        h1, h2 = self.head(vit.pooled(z)).float().chunk(2)
        with torch.autocast(h1.device.type, enabled=False):
            contrast = nt_xent(h1, h2, p.temperature)
        loss = rec + p.contrast_weight * contrast
        logs = {"reconstruction": float(rec.detach()), "contrast": float(contrast.detach())}
        if p.token_weight > 0:
            m1, m2 = mask.chunk(2)
            d1, d2 = dec.float().chunk(2)
            agree = masked_token_agreement(d1, d2, m1 * m2)
            loss = loss + p.token_weight * agree
            logs["token_agreement"] = float(agree.detach())
        return loss, logs
