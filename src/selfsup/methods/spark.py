"""SparK: masked image modelling for ordinary CNNs (our ConvNet and ResNets).

Tian, Jiang, Diao, Lin, Wang, Yuan, *Designing BERT for Convolutional Networks: Sparse and
Hierarchical Masked Modeling*, ICLR 2023 (authors' code: ``keyu-tian/SparK``,
``pretrain/spark.py``). The image is cut into patches as large as the backbone's total stride (one
cell of its last feature map); a random ``mask_ratio`` of them (0.6) is hidden; the CNN runs as a
sparse network (:func:`~selfsup.models.sparse.sparse_forward`: masked positions stay empty through
every layer, BatchNorm counts visible positions only); the feature map of every scale is densified
(``densify_norm``: a BatchNorm over its visible positions, then a learned mask token) and a
hierarchical decoder predicts the pixels (``decoder``: the authors' UNet blocks,
:class:`~selfsup.models.sparse.UNetDecoder`, or a lighter one,
:class:`~selfsup.models.sparse.LightDecoder`); the loss is MAE's normalised-pixel MSE on the hidden
patches.

One view is used (the first). Evaluation uses the backbone as usual, on whole images.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..errors import ConfigError
from ..losses.masked import masked_pixel_loss
from ..models.encoder import Encoder
from ..models.sparse import (
    LightDecoder,
    UNetDecoder,
    feature_channels,
    mask_at,
    sparse_forward,
)
from ..models.vit import check_patch, patchify, random_masking
from . import register
from .base import Batch, Context, Method, Needs, Params
from .mae import normalised

PROBE = 64


class SparKParams(Params):
    mask_ratio: float = Field(default=0.6, gt=0, lt=1)
    """Fraction of the patches hidden (SparK: 0.6)."""
    patch_size: int | None = Field(default=None, ge=1)
    """Side of a masked patch in pixels; default: the backbone's total stride (SparK's choice)."""
    norm_pix: bool = True
    decoder_width: int = Field(default=64, ge=8)
    """Width of the decoder's coarsest stage (halved at each finer one)."""
    densify_norm: Literal["bn", "none"] = "bn"
    """Normalisation of each encoder map before its mask tokens are filled in: ``bn``, a BatchNorm
    over the visible positions (the authors' ``densify_norms`` for CNNs); ``none``, the projection
    sees the map as it is (selfsup before this option)."""
    decoder: Literal["unet", "light"] = "unet"
    """``unet``: the authors' blocks (4x4 transposed convolution, then two 3x3 conv-BatchNorm with
    ReLU6 between), one per factor 2 of the stride, to full resolution; ``light``: nearest
    upsampling and one 3x3 conv-BN-ReLU a scale, down to the finest encoder map (selfsup before
    this option)."""


@register
class SparK(Method):
    name = "spark"
    paper = (
        "Tian et al. 2023, Designing BERT for Convolutional Networks: Sparse and Hierarchical "
        "Masked Modeling"
    )
    Params = SparKParams
    needs = Needs(encoder="feature_maps")
    views_used = 1

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        bb = encoder.backbone
        self.channels = int(cast(Tensor, encoder.mean).shape[1])
        chans, sizes = feature_channels(bb, self.channels, PROBE)
        self.n_scales = len(chans)
        self.stride = PROBE // sizes[0]
        self.decoder: LightDecoder | UNetDecoder
        self.take = list(range(self.n_scales))  # the scales the decoder is handed, coarsest first
        if params.decoder == "light":
            self.decoder = LightDecoder(
                chans, self.channels, params.decoder_width, params.densify_norm
            )
        else:
            n_blocks = self.stride.bit_length() - 1
            if self.stride != 2**n_blocks or n_blocks < 1:
                raise ConfigError(
                    f"params.decoder=unet needs a backbone whose total stride is a power of 2, "
                    f"not {self.stride}; use params.decoder=light"
                )
            at = {s: i for i, s in enumerate(sizes)}  # block i works at sizes[0] * 2**i
            idx = [at.get(sizes[0] * 2**i) for i in range(n_blocks)]
            self.take = [i for i in idx if i is not None]
            self.decoder = UNetDecoder(
                [None if i is None else chans[i] for i in idx],
                self.channels,
                n_blocks,
                params.decoder_width,
                params.densify_norm,
            )
        size = ctx.view_size
        if size:  # refuse a patch that does not divide the view size now, not at the first step
            check_patch(
                int(size),
                params.patch_size or self.stride,
                "params.patch_size" if params.patch_size else "the backbone's total stride",
            )

    def resume_hint(self, state: dict[str, Tensor]) -> str | None:
        """A checkpoint written with other decoder options (before issue 24 the defaults were
        ``decoder=light``, ``densify_norm=none``, and a run's config names only what was set):
        the options its weights were trained with, read from their names."""
        was = {
            "decoder": "unet" if any(k.startswith("decoder.blocks.") for k in state) else "light",
            "densify_norm": "bn" if any(k.startswith("decoder.norms.") for k in state) else "none",
        }
        diff = {k: v for k, v in was.items() if getattr(self.params, k) != v}
        if not diff:
            return None
        opts = ", ".join(f"{k}: {v}" for k, v in diff.items())
        return (
            f"its spark weights have {opts} (the defaults before the authors' decoder became the "
            f"default); put them in the run's config.yaml (params: {{{opts}}}) and resume with "
            "--allow-changes"
        )

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p, bb = self.params, self.encoder.backbone
        x = normalised(self.encoder, views[0])
        n, _, h, w = x.shape
        ps = p.patch_size or self.stride
        gh, gw = check_patch(h, ps), check_patch(w, ps)
        _, mask, _ = random_masking(n, gh * gw, p.mask_ratio, x.device)
        active = (1 - mask).view(n, 1, gh, gw).to(x.dtype)
        with sparse_forward(bb, active) as feats:
            bb(x * mask_at(active, (h, w)))
        keys = sorted(feats, key=lambda k: k[0])
        if len(keys) != self.n_scales:
            raise ConfigError(
                f"{h} px images give the backbone {len(keys)} feature scales, not {self.n_scales}; "
                f"use images of at least {self.stride} px"
            )
        pred = self.decoder([feats[keys[i]] for i in self.take], active)
        if pred.shape[-2:] != (h, w):
            pred = F.interpolate(pred, size=(h, w), mode="bilinear", align_corners=False)
        loss = masked_pixel_loss(
            patchify(pred, ps).float(), patchify(x, ps).float(), mask, p.norm_pix
        )
        return loss, {"masked": float(mask.mean())}
