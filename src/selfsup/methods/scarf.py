"""SCARF: contrastive learning on tables with random feature corruption.

Bahri, Jiang, Tay, Metzler, *SCARF: Self-Supervised Contrastive Learning using Random Feature
Corruption*, ICLR 2022. View 0 is the row (the anchor), the other views corrupted copies (default
views ``scarf``: 60% of the features of each row replaced by draws from their empirical marginals);
encoder + a 2-layer projection head, InfoNCE with temperature 1 from each anchor to its corrupted
copy against the other rows' corrupted copies (:func:`selfsup.losses.scarf.scarf_loss`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from ..losses.scarf import scarf_loss
from ..models import projection_head
from ..models.encoder import Encoder
from . import register
from ._common import encode
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class SCARFParams(Params):
    temperature: float = Field(default=1.0, gt=0)
    """The paper's temperature."""


@register
class SCARF(Method):
    name = "scarf"
    paper = (
        "Bahri et al. 2022, SCARF: Self-Supervised Contrastive Learning using "
        "Random Feature Corruption"
    )
    Params: ClassVar[type[ParamsModel]] = SCARFParams
    needs = Needs(view_preset="scarf")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.head = projection_head(encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = [z.float() for z in encode(lambda x: self.head(self.encoder(x)), views)]
        with torch.autocast(zs[0].device.type, enabled=False):
            loss = sum(scarf_loss(zs[0], z, self.params.temperature) for z in zs[1:]) / (
                len(zs) - 1
            )
        return torch.as_tensor(loss), {}
