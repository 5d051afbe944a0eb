"""BYOL-A: BYOL for audio, on BYOL-A's views with its normalisation.

Niizumi, Takeuchi, Ohishi, Harada, Kashino, *BYOL for Audio: Self-Supervised Learning for
General-Purpose Audio Representation*, IJCNN 2021 (https://arxiv.org/abs/2103.06695). The learning
is BYOL's (:mod:`selfsup.methods.byol`: online encoder, projector and predictor against an EMA
target; ``2 - 2 cos``). What BYOL-A adds is in its inputs: both views come from one segment of the
clip, normalised by the training set's log-mel statistics (the encoder's input normalisation),
then mixed with other clips (log-mixup-exp) and randomly resize-cropped (the data's ``byola`` view
preset, for sound), and finally **post-normalised**: the batch of augmented views (all views
together) is standardised to zero mean and unit deviation before the encoder, since mixing and
cropping move its statistics. Defaults follow the paper where a CPU allows (momentum 0.99; the
projector and predictor are ``model.proj_hidden`` / ``model.proj_dim`` wide; the paper: 4096/256).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from . import register
from .base import Batch, Needs
from .byol import BYOL, BYOLParams


class BYOLAParams(BYOLParams):
    momentum: float = Field(default=0.99, ge=0, le=1)
    post_norm: bool = True
    """Standardise the batch of augmented views before the encoder (BYOL-A's post-normalisation)."""


def post_normalise(views: list[Tensor], mean: Any, std: Any) -> list[Tensor]:
    """The views standardised by their joint mean and deviation, in the units the encoder's input
    normalisation expects (so that the backbone sees zero mean and unit deviation)."""
    joint = torch.cat([v.float().flatten() for v in views])
    mu, sd = joint.mean(), joint.std().clamp(min=1e-6)
    return [((v.float() - mu) / sd * std + mean).to(v.dtype) for v in views]


@register
class BYOLA(BYOL):
    name = "byola"
    paper = (
        "Niizumi et al. 2021, BYOL for Audio: Self-Supervised Learning for General-Purpose "
        "Audio Representation"
    )
    Params = BYOLAParams
    needs = Needs(view_preset="byola")

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if self.params.post_norm:
            enc = self.encoder
            views = post_normalise(views, getattr(enc, "mean", 0.0), getattr(enc, "std", 1.0))
        return super().forward(views, batch)
