"""MAE: masked autoencoding with a ViT (and its contrastive hybrid, ``cmae``, in ``cmae.py``).

He, Chen, Xie, Li, Dollar, Girshick, *Masked Autoencoders Are Scalable Vision Learners*, CVPR 2022.
Each image is cut into patches; a random ``mask_ratio`` of them (75%) is removed; the ViT encoder
sees only the visible patches; a light decoder puts a mask token at every removed position and
predicts its pixels; the loss (:func:`~selfsup.losses.masked_pixel_loss`) is the mean squared
error on the removed patches, each target patch normalised by its own mean and deviation
(``norm_pix``). Defaults follow the authors' ``facebookresearch/mae`` (mask ratio 0.75, normalised
pixels; their recipe's AdamW weight decay 0.05 is in ``configs/mae-cifar10.yaml``), scaled down for
32 px on a CPU (decoder width 64, 2 blocks).

MAE uses one view (the first; its recipe asks for crop + flip only). It needs a ViT backbone
(``--backbone vit_tiny``); evaluation uses the encoder's pooled token on whole images.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import Field
from torch import Tensor, nn

from ..losses.masked import masked_pixel_loss
from ..models.encoder import Encoder
from ..models.vit import MAEDecoder, ViT
from . import register
from .base import Batch, Context, Method, Needs, Params


class MAEParams(Params):
    mask_ratio: float = Field(default=0.75, gt=0, lt=1)
    """Fraction of the patches removed from each image (MAE: 0.75)."""
    norm_pix: bool = True
    """Normalise each target patch by its own mean and standard deviation (MAE's default)."""
    decoder_dim: int = Field(default=64, ge=4)
    decoder_depth: int = Field(default=2, ge=1)
    decoder_heads: int = Field(default=4, ge=1)


def normalised(encoder: nn.Module, x: Tensor) -> Tensor:
    """The encoder's input normalisation, as its backbone sees the image."""
    mean, std = getattr(encoder, "mean", None), getattr(encoder, "std", None)
    return x if mean is None else (x - mean) / std


@register
class MAE(Method):
    name = "mae"
    paper = "He et al. 2022, Masked Autoencoders Are Scalable Vision Learners"
    Params = MAEParams
    needs = Needs(encoder="tokens")
    #: the views this method reads (the loop may make more; the rest are ignored)
    views_used = 1

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        vit = cast(ViT, encoder.backbone)
        p = params
        self.decoder = MAEDecoder(
            vit.dim,
            vit.patch_size,
            vit.in_channels,
            p.decoder_dim,
            p.decoder_depth,
            p.decoder_heads,
            out_dim=vit.patch_dim,
        )

    def masked_pass(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One random mask of the normalised images ``x``: (loss, mask, encoded visible tokens,
        decoder features (N, L, d))."""
        vit = cast(ViT, self.encoder.backbone)  # any backbone with the token interface of ViT
        grid = vit.token_grid(x)
        ids_keep, mask, ids_restore = vit.mask_tokens(
            len(x), grid, self.params.mask_ratio, x.device
        )
        z = vit.forward_visible(x, ids_keep)
        pos = vit.pos_table(self.decoder.dim, grid, x.device, z.dtype)
        pred, tokens = self.decoder(z, ids_restore, grid, pos)
        target = vit.patchify(x)
        loss = masked_pixel_loss(pred.float(), target.float(), mask, self.params.norm_pix)
        return loss, mask, z, tokens

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, mask, _, _ = self.masked_pass(normalised(self.encoder, views[0]))
        return loss, {"masked": float(mask.mean())}
