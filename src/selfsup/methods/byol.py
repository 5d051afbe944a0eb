"""BYOL: an online network predicts a momentum (EMA) target network's projection of another view.

Grill et al., *Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning*, NeurIPS 2020.
Online: encoder -> projector -> predictor. Target: EMA of encoder and projector, with momentum
``1 - (1 - base) (cos(pi k / K) + 1) / 2`` rising from ``base`` to 1 over the run (set in
``after_step`` from the step and the total number of steps). Loss ``2 - 2 s(p, sg(z'))`` over every
(target view, other online view) pair, symmetric for two views. With multi-crop views the target
sees only the global views and the online network sees all of them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses import byol_loss
from ..models import mlp
from ..models.encoder import Encoder
from . import register
from ._common import (
    cosine_momentum,
    ema_update,
    encode,
    frozen_copy,
    global_count,
    pair_mean,
    pairs,
)
from .base import Batch, Context, Method, Params, ParamsModel


class BYOLParams(Params):
    momentum: float = Field(default=0.99, ge=0, le=1)
    """Starting target momentum (0.99 on CIFAR, 0.996 on ImageNet); rises to 1 on a cosine."""
    predictor: Literal["mlp", "linear"] = "mlp"
    """``mlp``: BYOL's 2-layer predictor; ``linear``: one bias-free linear layer trained by gradient
    (the baseline DirectPred and DirectCopy are compared with in their papers)."""


@register
class BYOL(Method):
    name = "byol"
    paper = (
        "Grill et al. 2020, Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning"
    )
    Params: ClassVar[type[ParamsModel]] = BYOLParams  # subclasses bring their own

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=2)
        self.predictor = self.make_predictor(m.proj_dim, m.proj_hidden)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)

    def make_predictor(self, dim: int, hidden: int) -> nn.Module:
        if getattr(self.params, "predictor", "mlp") == "linear":
            return nn.Linear(dim, dim, bias=False)
        return mlp(dim, hidden, dim, layers=2)

    def predict(self, z: Tensor) -> Tensor:
        out: Tensor = self.predictor(z)
        return out

    def online(self, views: list[Tensor]) -> list[Tensor]:
        return encode(lambda x: self.projector(self.encoder(x)), views)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = self.online(views)
        ps = [self.predict(z) for z in zs]
        with torch.no_grad():
            g = global_count(views)
            ts = encode(lambda x: self.target_projector(self.target_encoder(x)), views[:g])
        loss = pair_mean(lambda i, j: byol_loss(ps[j], ts[i]), pairs(views, ordered=True))
        self._online_z: list[Tensor] | None = [z.detach() for z in zs]
        return loss, {}

    def momentum_at(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.params.momentum, step, total_steps)

    def after_step(self, step: int, total_steps: int) -> None:
        m = self.momentum_at(step, total_steps)
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_projector, self.projector, m)
