"""VIME (self-supervised part): mask-vector estimation and feature reconstruction.

Yoon et al., *VIME: Extending the Success of Self- and Semi-supervised Learning to Tabular Domain*,
NeurIPS 2020; authors' code jsyoon0823/VIME (``vime_self.py``). View 0 is the row, the other views
corrupted copies (default views ``vime``: each cell masked with probability 0.3 and imputed from the
feature's marginal); the mask target is where a corrupted view differs from the row. The encoder
sees only the corrupted views; a linear mask head and a linear feature head predict the mask and the
row; loss BCE + alpha * MSE (:func:`selfsup.losses.vime.vime_loss`). The heads are sized by the
raw sample's number of values (a table's F columns).

As the authors' code does by default: each training row gets **one** corrupted copy, made once
before training (``pretext_generator`` runs once on the whole set; ``fixed_corruption``), the
reconstruction target is the row min-max scaled to [0, 1] by the training columns with a sigmoid
feature head (``scaling="minmax"``), and the optimiser is RMSprop at Keras's defaults for 10
epochs of batch 128 (the method's tuned defaults, where the user set none).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, cast

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
    fixed_corruption: bool = True
    """One corrupted copy per row, made before training (the authors'); False: a fresh one per step
    from the ``vime`` views."""
    scaling: Literal["minmax", "standard"] = "minmax"
    """The reconstruction target: ``minmax`` the row scaled to [0, 1] by the training columns'
    minimum and maximum, through a sigmoid head (the authors'); ``standard`` the row standardised
    by the encoder's input statistics, through a linear head."""


@register
class VIME(Method):
    name = "vime"
    paper = (
        "Yoon et al. 2020, VIME: Extending the Success of Self- and Semi-supervised Learning "
        "to Tabular Domain"
    )
    Params: ClassVar[type[ParamsModel]] = VIMEParams
    needs = Needs(
        view_preset="vime",
        exact_views=True,
        defaults={
            "optim": {"name": "rmsprop", "lr": 1e-3, "weight_decay": 0.0},
            "train": {"epochs": 10, "batch_size": 128},
        },
    )

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d = math.prod(ctx.input_shape or (1,))
        self.mask_head = nn.Linear(encoder.out_dim, d)
        self.feature_head = nn.Linear(encoder.out_dim, d)
        n = ctx.n_samples if params.fixed_corruption else 0
        #: the corrupted copy of each training row (fixed_corruption), made by ``prepare``
        self.corrupted: Tensor
        self.register_buffer("corrupted", torch.zeros(n, d))
        #: the training columns' minimum and range (scaling="minmax")
        self.low: Tensor
        self.span: Tensor
        self.register_buffer("low", torch.zeros(d))
        self.register_buffer("span", torch.ones(d))

    def prepare(self, x: Tensor, views: Any) -> None:
        flat = x.flatten(1).float()
        low, high = flat.amin(0), flat.amax(0)
        self.low, self.span = low, torch.where(high > low, high - low, torch.ones_like(low))
        if self.params.fixed_corruption:  # the authors' pretext_generator, once on the whole set
            with torch.no_grad():
                made = [views(chunk)[1].flatten(1).float() for chunk in x.split(4096)]
            self.corrupted = torch.cat(made).to(self.corrupted.device)

    def _target(self, x: Tensor) -> Tensor:
        if self.params.scaling == "minmax":
            return ((x.flatten(1).float() - self.low) / self.span).clamp(0, 1)
        mean, std = getattr(self.encoder, "mean", 0.0), getattr(self.encoder, "std", 1.0)
        return ((x - mean) / std).flatten(1).float()

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x = views[0]
        target = self._target(x)
        if self.params.fixed_corruption and len(self.corrupted) > 0:
            corrupted = [self.corrupted[batch.index].view_as(x).to(x.dtype)]
        else:
            corrupted = views[1:]
        losses, bce = [], 0.0
        for xt in corrupted:
            h = self.encoder(xt)
            logits, rec = self.mask_head(h).float(), self.feature_head(h).float()
            if self.params.scaling == "minmax":
                rec = torch.sigmoid(rec)
            mask = (xt != x).flatten(1)
            with torch.autocast(h.device.type, enabled=False):
                losses.append(vime_loss(logits, mask, rec, target, self.params.alpha))
                bce += float(
                    nn.functional.binary_cross_entropy_with_logits(logits.detach(), mask.float())
                )
        return cast(Tensor, sum(losses) / len(losses)), {"mask_bce": bce / len(losses)}
