"""CLAN: contrastive learning with augmented negatives, for anomaly detection.

Wilkie et al., *Contrastive Self-Supervised Network Intrusion Detection Using Augmented Negative
Pairs*, IEEE 2025; authors' code jackwilkie/CLAN. Trained on benign (normal) rows only: the other
benign rows of the batch are the positives, the augmented rows (view 1 onwards; default views
``clan``: 10% of the features resampled uniformly in [-1.5, 1.5] standard deviations) the
negatives, with the margin loss of :func:`selfsup.losses.clan.clan_loss`. The anomaly score is the
negative cosine similarity to the mean embedding of the normal training rows.

The authors project a 4-layer ReLU MLP with a linear layer and score that output; the default
table encoder here (``mlp``) ends in a linear layer itself, so the loss and the score use the
encoder's features (``loss.proj_dim`` > 0 adds a linear projection for the loss only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.clan import centroid_score, clan_loss
from ..models.encoder import Encoder
from . import register
from ._common import encode
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class CLANParams(Params):
    margin: float = Field(default=0.6, gt=0, le=1)
    """The margin ``m`` on the cosine distance (1 - cos) / 2 of a row and an augmented row."""
    alpha: float = Field(default=0.5, ge=0, le=1)
    """Weight of the positive (benign-benign) term; 1 - alpha weighs the negatives."""
    squared: bool = True
    proj_dim: int = Field(default=0, ge=0)
    """0: the loss on the encoder's features; > 0: on a linear projection to this many dimensions."""


@register
class CLAN(Method):
    name = "clan"
    paper = "Wilkie et al. 2025, Contrastive Self-Supervised Network Intrusion Detection Using Augmented Negative Pairs"
    Params: ClassVar[type[ParamsModel]] = CLANParams
    needs = Needs(view_preset="clan")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        p = params.proj_dim
        self.head: nn.Module = nn.Linear(encoder.out_dim, p) if p else nn.Identity()

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = [z.float() for z in encode(lambda x: self.head(self.encoder(x)), views)]
        p = self.params
        with torch.autocast(zs[0].device.type, enabled=False):
            loss = clan_loss(zs[0], torch.cat(zs[1:]), p.margin, p.alpha, p.squared)
        return loss, {}

    @staticmethod
    def anomaly_score(bank: Tensor, query: Tensor) -> Tensor:
        """``-cos(query, mean(bank))``: the authors' score (higher = more anomalous)."""
        return centroid_score(bank, query)
