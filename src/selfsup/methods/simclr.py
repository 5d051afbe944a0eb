"""SimCLR: encoder + projection head + NT-Xent over all views.

Chen et al., *A Simple Framework for Contrastive Learning of Visual Representations*, ICML 2020.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from ..losses import nt_xent
from ..models import projection_head
from ..models.encoder import Encoder
from . import register
from ._common import encode, pair_mean
from ._common import pairs as view_pairs
from .base import Batch, Context, Method, Params, ParamsModel


class SimCLRParams(Params):
    temperature: float = Field(default=0.5, gt=0)
    """lightly's default; SimCLR used 0.1-0.5 depending on batch size and epochs."""


@register
class SimCLR(Method):
    name = "simclr"
    paper = (
        "Chen et al. 2020, A Simple Framework for Contrastive Learning of Visual Representations"
    )
    Params: ClassVar[type[ParamsModel]] = SimCLRParams  # subclasses bring their own

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.head = projection_head(encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim)

    def project(self, views: list[Tensor]) -> list[Tensor]:
        # one batched call per view size (multi-crop views differ in size)
        return encode(lambda x: self.head(self.encoder(x)), views)

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        return nt_xent(z1, z2, self.params.temperature)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = [z.float() for z in self.project(views)]
        pairs = view_pairs(views)  # every view pair; with multi-crop, global vs all
        with torch.autocast(zs[0].device.type, enabled=False):  # logits in fp32 under bf16 autocast
            loss = pair_mean(lambda i, j: self.contrast(zs[i], zs[j], batch), pairs)
        return loss, {}
