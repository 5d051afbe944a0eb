"""GRACE: two corrupted views of the graph, node-level contrast with intra- and inter-view
negatives.

Zhu, Xu, Yu, Liu, Wu, Wang. *Deep Graph Contrastive Representation Learning.* ICML 2020 GRL+
workshop (arXiv 2006.04131); authors' code CRIPAC-DIG/GRACE (``model.py``, ``train.py``; Cora
defaults in ``config.yaml``: a 2-layer GCN 256 -> 128 with ReLU, projection 128 -> 128 -> 128 with
ELU, tau 0.4, edge dropping 0.2 / 0.4 and feature masking 0.3 / 0.4 for the two views (the
``grace`` view preset), 200 epochs at a constant learning rate 5e-4, weight decay 1e-5). Each view
is encoded on its own graph (:func:`selfsup.losses.grace.grace_loss`). Graphs only
(``Needs(edges=True)``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..losses.grace import grace_loss
from ..losses.l2 import l2_penalty
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class GRACEParams(Params):
    tau: float = Field(default=0.4, gt=0)
    """Temperature (Cora: 0.4)."""
    proj_hidden: int = Field(default=128, ge=1)
    """Width of the projection head's hidden layer (Cora: 128)."""
    l2: float = Field(default=0.0, ge=0)
    """Coupled L2 weight decay on every parameter as a loss term
    (:func:`selfsup.losses.l2.l2_penalty`): with ``optim.weight_decay: 0``, the authors'
    ``torch.optim.Adam(weight_decay=l2)`` (Cora:
    1e-5)."""


@register
class GRACE(Method):
    name = "grace"
    paper = "Zhu et al. 2020, Deep Graph Contrastive Representation Learning"
    Params: ClassVar[type[ParamsModel]] = GRACEParams
    needs = Needs(
        edges=True,
        n_views=2,
        view_preset="grace",
        defaults={
            "train": {"epochs": 200},
            # the authors keep the rate constant (train.py: no scheduler)
            "optim": {"lr": 5e-4, "weight_decay": 1e-5, "schedule": "constant"},
            "model": {"backbone": "gcn"},
        },
    )

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d = int(encoder.out_dim)
        self.fc1 = nn.Linear(d, params.proj_hidden)
        self.fc2 = nn.Linear(params.proj_hidden, d)

    def project(self, h: Tensor) -> Tensor:
        out: Tensor = self.fc2(F.elu(self.fc1(h)))
        return out

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        z1, z2 = self.project(self.encoder(views[0])), self.project(self.encoder(views[1]))
        loss = grace_loss(z1.float(), z2.float(), self.params.tau)
        if self.params.l2 > 0:
            return loss + l2_penalty(self, self.params.l2), {"grace": float(loss.detach())}
        return loss, {}
