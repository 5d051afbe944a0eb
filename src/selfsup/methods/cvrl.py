"""CVRL: SimCLR's InfoNCE on two clips of one video, with CVRL's defaults.

Qian, Meng, Gong, Yang, Wang, Belongie, Cui, *Spatiotemporal Contrastive Video Representation
Learning*, CVPR 2021. The objective is the InfoNCE (NT-Xent) of SimCLR over the clip embeddings of
a projection head; what makes it CVRL are its views: two clips of the same video placed by the
temporal interval sampler, each with one spatial augmentation for all of its frames. A modality
provides those views as its ``cvrl`` view preset (video: :mod:`selfsup.views.video`, the default
views there); on other data the method is SimCLR at CVRL's temperature.

Defaults follow the paper: temperature 0.1 and a 3-layer projection head (CVRL's MLP head); the
paper's LARS at batch 1,024 for 800 epochs on Kinetics-600 is scaled down to the CPU defaults of the
data (AdamW, a batch of at most 64 clips).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import projection_head
from ..models.encoder import Encoder
from . import register
from .base import Context, Needs, Params
from .simclr import SimCLR


class CVRLParams(Params):
    temperature: float = Field(default=0.1, gt=0)
    """CVRL's temperature (0.1)."""
    head_layers: int = Field(default=3, ge=1, le=4)
    """Layers of the projection head (CVRL: 3)."""


@register
class CVRL(SimCLR):
    name = "cvrl"
    paper = "Qian et al. 2021, Spatiotemporal Contrastive Video Representation Learning"
    Params = CVRLParams
    needs = Needs(view_preset="cvrl")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.head = projection_head(
            encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim, params.head_layers
        )
