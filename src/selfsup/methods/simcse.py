"""SimCSE (unsupervised): the same input encoded twice, dropout the only noise, in-batch InfoNCE.

Gao, Yao, Chen, *SimCSE: Simple Contrastive Learning of Sentence Embeddings*, EMNLP 2021. Each
sample passes twice through the encoder in training mode; the two dropout masks make the two
views (its view preset is ``none``: the input unchanged; a modality without it gives its default
views). The loss is :func:`~selfsup.losses.simcse.simcse_loss` (temperature 0.05, the paper's) on
an MLP of the features (Linear + tanh, the BERT pooler the authors train with and drop at test
time: evaluation uses the encoder's features). The authors' unsupervised recipe: batch 64, lr 3e-5
for BERT-base, 1 epoch of 10^6 Wikipedia sentences. The encoder needs dropout to learn anything.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.simcse import simcse_loss
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params


class SimCSEParams(Params):
    temperature: float = Field(default=0.05, gt=0)
    """SimCSE's temperature (0.05)."""


@register
class SimCSE(Method):
    name = "simcse"
    paper = "Gao et al. 2021, SimCSE: Simple Contrastive Learning of Sentence Embeddings"
    Params = SimCSEParams
    needs = Needs(view_preset="none")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d = encoder.out_dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.Tanh())

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        z1 = self.head(self.encoder(views[0])).float()
        z2 = self.head(self.encoder(views[1])).float()
        with torch.autocast(z1.device.type, enabled=False):
            loss = simcse_loss(z1, z2, self.params.temperature)
        return loss, {}
