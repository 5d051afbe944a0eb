"""VIME (self-supervised part): mask-vector estimation and feature reconstruction.

Yoon et al., *VIME: Extending the Success of Self- and Semi-supervised Learning to Tabular Domain*,
NeurIPS 2020; authors' code jsyoon0823/VIME (``vime_self.py``). View 0 is the row, the other views
corrupted copies (default views ``vime``: each cell masked with probability 0.3 and imputed from the
feature's marginal); the mask target is where a corrupted view differs from the row. The encoder
sees only the corrupted views; a linear mask head and a linear feature head predict the mask and the
row (standardised by the encoder's input statistics); loss BCE + alpha * MSE
(:func:`selfsup.losses.vime.vime_loss`). The heads are sized by the raw sample's number of values
(a table's F columns).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.vime import vime_loss
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class VIMEParams(Params):
    alpha: float = Field(default=2.0, ge=0)
    """Weight of the feature reconstruction loss (the authors' default)."""


@register
class VIME(Method):
    name = "vime"
    paper = "Yoon et al. 2020, VIME: Extending the Success of Self- and Semi-supervised Learning to Tabular Domain"
    Params: ClassVar[type[ParamsModel]] = VIMEParams
    needs = Needs(view_preset="vime", exact_views=True)

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d = math.prod(ctx.input_shape or (1,))
        self.mask_head = nn.Linear(encoder.out_dim, d)
        self.feature_head = nn.Linear(encoder.out_dim, d)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x = views[0]
        mean, std = getattr(self.encoder, "mean", 0.0), getattr(self.encoder, "std", 1.0)
        target = ((x - mean) / std).flatten(1).float()
        losses, bce = [], 0.0
        for xt in views[1:]:
            h = self.encoder(xt)
            logits, rec = self.mask_head(h).float(), self.feature_head(h).float()
            mask = (xt != x).flatten(1)
            with torch.autocast(h.device.type, enabled=False):
                losses.append(vime_loss(logits, mask, rec, target, self.params.alpha))
                bce += float(
                    nn.functional.binary_cross_entropy_with_logits(logits.detach(), mask.float())
                )
        return cast(Tensor, sum(losses) / len(losses)), {"mask_bce": bce / len(losses)}
