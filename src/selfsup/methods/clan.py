"""CLAN: contrastive learning with augmented negatives, for anomaly detection.

Wilkie et al., *Contrastive Self-Supervised Network Intrusion Detection Using Augmented Negative
Pairs*, IEEE 2025; authors' code jackwilkie/CLAN, pinned to commit 680ab61 (2025-09-19), whose
``train_clan.py`` last changed in b3542f2 ("bug fix", 2025-08-31; the later commits touch the
README, a comment and the pretrained weights only). Trained on
benign (normal) rows only: the other benign rows of the batch are the positives, the augmented rows
(view 1 onwards; default views ``clan``: 10% of the cells resampled uniformly in [-1.7, 1.7]
standard deviations) the negatives, with the margin loss of :func:`selfsup.losses.clan.clan_loss`
(margin 0.5, unsquared). The anomaly score is the negative cosine similarity to the mean
embedding of the normal training rows.

The authors' encoder is a residual 4 x 1024 ReLU MLP followed by a linear projection to 64
dimensions; both the loss and the score use that projection. On tables the default backbone here
is that network (``residual_mlp``, whose output *is* the projection), so the saved encoder scores
as theirs does. Their optimiser: AdamW, weight decay 0, rate warmed up linearly over the first tenth
of the epochs to 1e-4, then cosine-annealed to 1e-6 (``min_lr_ratio`` 0.01), 200 epochs of batch
8,192 drawn with replacement.
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
    margin: float = Field(default=0.5, gt=0, le=1)
    """The margin ``m`` on the cosine distance (1 - cos) / 2 of a row and an augmented row (the
    authors' current 0.5; their earlier script: 0.6 with ``squared``)."""
    alpha: float = Field(default=0.5, ge=0, le=1)
    """Weight of the positive (benign-benign) term; 1 - alpha weighs the negatives."""
    squared: bool = False
    """Square each distance and each hinge (the authors' earlier script); default: unsquared."""
    proj_dim: int = Field(default=0, ge=0)
    """0: the loss on the encoder's features; > 0: on a linear projection to this many dimensions
    (for backbones without CLAN's own projection; the score still uses the encoder's features)."""
    replacement: bool = True
    """Draw each epoch's rows with replacement (the authors' loader, a ``WeightedRandomSampler``
    over the one benign class); False: a permutation, each row once per epoch."""


@register
class CLAN(Method):
    name = "clan"
    paper = (
        "Wilkie et al. 2025, Contrastive Self-Supervised Network Intrusion Detection Using "
        "Augmented Negative Pairs"
    )
    Params: ClassVar[type[ParamsModel]] = CLANParams
    needs = Needs(
        view_preset="clan",
        defaults={
            # the authors' encoder: residual 4 x 1024 MLP + linear projection to 64 (the output)
            "model": {"backbone": "residual_mlp"},
            # train_clan.py (b3542f2): AdamW, wd 0, linear warm-up for epochs // 10 epochs, then
            # cosine from 1e-4 to 1e-6, stepped per batch; 200 epochs
            "optim": {
                "name": "adamw",
                "lr": 1e-4,
                "weight_decay": 0.0,
                "schedule": "cosine",
                "min_lr_ratio": 0.01,
            },
            "train": {"epochs": 200},
        },
    )

    @classmethod
    def data_defaults(
        cls, params: ParamsModel, n_samples: int, sample_shape: tuple[int, ...], epochs: int
    ) -> dict[str, dict[str, Any]]:
        """The authors' batch of 8,192 rows, or every training row where there are fewer, and
        their warm-up of a tenth of the run (``epochs // 10`` epochs)."""
        return {
            "train": {"batch_size": max(2, min(8192, n_samples))},
            "optim": {"warmup_epochs": float(epochs // 10)},
        }

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

    def batch_order(self, n: int, batch_size: int, generator: torch.Generator) -> Tensor | None:
        """With ``replacement``: ``n`` row indices drawn uniformly with replacement (the authors'
        sampler); else None (a permutation)."""
        if not self.params.replacement:
            return None
        return torch.randint(n, (n,), generator=generator)

    @staticmethod
    def anomaly_score(bank: Tensor, query: Tensor) -> Tensor:
        """``-cos(query, mean(bank))``: the authors' score (higher = more anomalous)."""
        return centroid_score(bank, query)
