"""BYOL-A: BYOL for audio, on BYOL-A's views with its normalisation.

Niizumi, Takeuchi, Ohishi, Harada, Kashino, *BYOL for Audio: Self-Supervised Learning for
General-Purpose Audio Representation*, IJCNN 2021 (https://arxiv.org/abs/2103.06695); the
authors' code: nttcslab/byol-a (train.py, byol_a/augmentations.py, config.yaml). The learning is
BYOL's (:mod:`selfsup.methods.byol`: online encoder, projector and predictor against an EMA
target; ``2 - 2 cos``, both orders). What BYOL-A adds is in its inputs: both views come from one
segment of the clip, pre-normalised by the training set's log-mel statistics, mixed with other
clips in those normalised units (log-mixup-exp) and randomly resize-cropped on a virtual canvas
(the data's ``byola`` view preset, for sound), and finally **post-normalised**: the batch of
augmented views (all views together) is standardised to zero mean and unit deviation before the
encoder, since mixing and cropping move its statistics.

Defaults: the authors' projector and predictor widths (``model.proj_hidden`` 4096,
``model.proj_dim`` 256, config.yaml's ``proj_dim`` and ``proj_size``, applied where the user left
them unset; of the authors' pieces the one that moved byola most on ``spoken_digits``, where it
stays below its random initialisation all the same: BENCHMARKS.md), momentum 0.99. Not the
authors': the momentum rises to 1 on BYOL's cosine (``params.momentum_schedule=constant`` for the
authors' fixed EMA), AdamW at the sound modality's lr 1e-3 (the authors: Adam, 3e-4, batch 256),
mixing partners from the batch (the authors: a FIFO of 2,048 past clips).
"""

from __future__ import annotations

from typing import Any, Literal

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
    momentum_schedule: Literal["cosine", "constant"] = "cosine"
    """``constant``: the target's momentum stays ``momentum`` (BYOL-A's authors' code, an EMA of
    fixed decay); ``cosine``: BYOL's rise from ``momentum`` to 1 over the run."""


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
    needs = Needs(
        view_preset="byola",
        # config.yaml of nttcslab/byol-a: proj_dim 4096 (the hidden layer), proj_size 256
        defaults={"model": {"proj_hidden": 4096, "proj_dim": 256}},
    )

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if self.params.post_norm:
            enc = self.encoder
            views = post_normalise(views, getattr(enc, "mean", 0.0), getattr(enc, "std", 1.0))
        return super().forward(views, batch)

    def momentum_at(self, step: int, total_steps: int) -> float:
        if self.params.momentum_schedule == "constant":
            return float(self.params.momentum)
        return super().momentum_at(step, total_steps)
