"""Video MAE with image-video contrast: tube-masked autoencoding of clips (VideoMAE) plus a contrast
between a clip and one of its frames (CrossVideoMAE).

Tong, Song, Wang, Wang, *VideoMAE: Masked Autoencoders are Data-Efficient Learners for
Self-Supervised Video Pre-Training*, NeurIPS 2022: MAE (:mod:`selfsup.methods.mae`) over tubelet
tokens with *tube masking* at a very high ratio (90%): the same spatial positions are masked in
every frame, so a masked patch cannot be copied from a neighbouring frame and the model has to
reason about motion. The backbone brings the tubelets and the tube mask (its ``mask_tokens``;
the video ViT's, :func:`selfsup.views.video.tube_mask`); the reconstruction loss is MAE's (mean
squared error on the masked tubelets, each normalised by its own mean and deviation).

Ahamed, Gunawardhana, David, Sidorov, Harari, Khan, *CrossVideoMAE: Self-Supervised Image-Video
Representation Learning with Masked Autoencoders*, 2025: beside the video branch, a frame sampled
from the clip goes through the encoder as a still clip (the backbone's ``still``: that frame
repeated over time), and the two are pulled together against the other clips of the batch. Here that
is one InfoNCE term (NT-Xent, temperature ``temperature``) between the projected pooled visible
tokens of the masked clip and of its masked still frame, weighted by ``contrast_weight``:

    L = L_rec(masked tubelets) + contrast_weight * NT-Xent(g(clip), g(frame))

Deviations (ours, CPU-sized): one shared encoder for clips and frames (CrossVideoMAE pairs a
video ViT with a pre-trained image MAE), no reconstruction loss on the frame branch, one contrast
at the level of the pooled embeddings (the paper also contrasts token-level features); decoder width
64, 2 blocks.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses import nt_xent
from ..models import projection_head
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Needs
from .mae import MAE, MAEParams, normalised


class VideoMAEParams(MAEParams):
    mask_ratio: float = Field(default=0.9, gt=0, lt=1)
    """Fraction of the tubes removed from each clip (VideoMAE: 0.9)."""
    contrast_weight: float = Field(default=1.0, ge=0)
    """Weight of CrossVideoMAE's clip-frame contrast (0: VideoMAE alone)."""
    temperature: float = Field(default=0.1, gt=0)
    """Temperature of the clip-frame InfoNCE."""


@register
class VideoMAE(MAE):
    name = "video_mae"
    paper = (
        "Tong et al. 2022, VideoMAE; Ahamed et al. 2025, CrossVideoMAE: Self-Supervised "
        "Image-Video Representation Learning with Masked Autoencoders"
    )
    Params = VideoMAEParams
    needs = Needs(encoder="tokens")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        backbone = encoder.backbone
        if params.contrast_weight > 0 and not callable(getattr(backbone, "still", None)):
            raise ConfigError(
                "video_mae contrasts a clip with its frames, which needs a backbone of clips of "
                "tubelets (video_vit); choose it with --backbone video_vit, or set "
                "params.contrast_weight=0"
            )
        super().__init__(encoder, params, ctx)
        self.head: nn.Module = projection_head(
            encoder.out_dim, ctx.model.proj_hidden, ctx.model.proj_dim
        )

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x = normalised(self.encoder, views[0])
        rec, mask, z, _ = self.masked_pass(x)
        logs = {"masked": float(mask.mean()), "reconstruction": float(rec.detach())}
        if self.params.contrast_weight == 0:
            return rec, logs
        vit = self.encoder.backbone
        still = cast(Any, vit).still(x)
        grid = cast(Any, vit).token_grid(still)
        ids_keep, _, _ = cast(Any, vit).mask_tokens(len(x), grid, self.params.mask_ratio, x.device)
        zf = cast(Any, vit).forward_visible(still, ids_keep)
        pooled = cast(Any, vit).pooled
        hc, hf = self.head(pooled(z)).float(), self.head(pooled(zf)).float()
        with torch.autocast(hc.device.type, enabled=False):
            contrast = nt_xent(hc, hf, self.params.temperature)
        logs["contrast"] = float(contrast.detach())
        return rec + self.params.contrast_weight * contrast, logs
