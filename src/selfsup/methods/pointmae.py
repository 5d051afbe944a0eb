"""Point-MAE: masked autoencoding of point-cloud patches (and ``pointcmae``, its contrastive
hybrid).

Pang, Wang, Tay, Liu, Tian, Yuan, *Masked Autoencoders for Point Cloud Self-supervised Learning*,
ECCV 2022. The cloud is cut into patches (farthest-point centres, the ``k`` nearest points of each,
in the centre's frame); a random ``mask_ratio`` of the patches (60%) is hidden; the transformer
encoder sees only the visible patches' tokens (mini-PointNet embedding + an MLP of the centre);
a light decoder puts a mask token, plus the centre's positional embedding, at every hidden patch
and predicts its ``k`` points; the loss is the L2 Chamfer distance
(:func:`~selfsup.losses.chamfer.chamfer_l2`) between predicted and true hidden patches.
Defaults follow the authors' ModelNet/ShapeNet configuration (mask ratio 0.6, random masking,
decoder of 4 blocks), scaled for a CPU (decoder width 128, 2 blocks).

It needs the ``point_transformer`` backbone (``--backbone auto`` picks it); evaluation uses the
max and mean of the encoder's tokens over all patches. One view is used (the first).
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.chamfer import chamfer_l2
from ..models.encoder import Encoder
from ..models.points import Block, PointTransformer, init_authors, set_drop_path
from ..models.vit import gather_tokens, random_masking
from . import register
from .base import Batch, Context, Method, Needs, Params
from .mae import normalised


class PointMAEParams(Params):
    mask_ratio: float = Field(default=0.6, gt=0, lt=1)
    """Fraction of the patches hidden (Point-MAE: 0.6)."""
    decoder_dim: int = Field(default=128, ge=8)
    decoder_depth: int = Field(default=2, ge=1)
    decoder_heads: int = Field(default=4, ge=1)
    decoder_pos: Literal["every", "first"] = "first"
    """Where the decoder adds the centres' embedding: before ``every`` block (the authors') or
    before the ``first`` only."""
    init: Literal["torch", "authors"] = "torch"
    """``authors``: the encoder's transformer and the decoder start from the authors'
    initialisation (:func:`~selfsup.models.points.init_authors`: truncated normal 0.02 in the
    encoder, Xavier uniform in the decoder's blocks, zero biases); ``torch``: torch's defaults.
    The random-init baseline keeps torch's either way."""
    drop_path: float = Field(default=0.0, ge=0, lt=1)
    """Stochastic depth of the encoder's and the decoder's blocks, rising linearly from 0 at the
    first block to this at the last (the authors: 0.1)."""


class PointDecoder(nn.Module):
    """Point-MAE's decoder: visible tokens and mask tokens, each plus its centre's embedding
    (before every block with ``pos="every"``, as the authors; before the first with ``"first"``),
    through transformer blocks; a linear layer predicts ``k`` points per patch. ``init="authors"``:
    the authors' decoder initialisation (Xavier uniform linear weights in the blocks, biases 0,
    layer norms 1 and 0; the mask token normal of std 0.02 either way)."""

    def __init__(
        self,
        enc_dim: int,
        dim: int,
        depth: int,
        heads: int,
        k: int,
        pos: str = "first",
        init: str = "torch",
    ) -> None:
        super().__init__()
        self.k, self.pos_every = k, pos == "every"
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3 * k)
        if init == "authors":
            init_authors(self.blocks, linear="xavier")

    def forward(self, z: Tensor, centres: Tensor, ids_restore: Tensor) -> tuple[Tensor, Tensor]:
        """``(points (B, S, k, 3), decoder features (B, S, dim))`` for every patch position."""
        b, s = ids_restore.shape
        h = self.embed(z)
        h = torch.cat([h, self.mask_token.expand(b, s - h.shape[1], -1)], 1)
        h, pos = gather_tokens(h, ids_restore), self.pos(centres)
        for i, blk in enumerate(self.blocks):
            h = blk(h + pos if i == 0 or self.pos_every else h)
        h = self.norm(h)
        return self.head(h).view(b, s, self.k, 3), h


def masked_chamfer(pred: Tensor, patches: Tensor, mask: Tensor) -> Tensor:
    """Chamfer distance between predicted and true patches at the hidden positions (mask 1)."""
    sel = mask.bool()
    return chamfer_l2(pred[sel], patches[sel])


@register
class PointMAE(Method):
    name = "pointmae"
    paper = "Pang et al. 2022, Masked Autoencoders for Point Cloud Self-supervised Learning"
    Params = PointMAEParams
    needs = Needs(encoder="point_patches")
    views_used = 1

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        pt = self.transformer
        p = params
        if p.init == "authors":
            init_authors(pt)
        self.decoder = PointDecoder(
            pt.dim,
            p.decoder_dim,
            p.decoder_depth,
            p.decoder_heads,
            pt.group_size,
            pos=p.decoder_pos,
            init=p.init,
        )
        set_drop_path(pt.blocks, p.drop_path)
        set_drop_path(self.decoder.blocks, p.drop_path)

    @property
    def transformer(self) -> PointTransformer:
        return cast(PointTransformer, self.encoder.backbone)

    def masked_pass(
        self, centres: Tensor, patches: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One random mask: (Chamfer loss, mask (B, S), visible tokens, decoder features)."""
        b, s = centres.shape[:2]
        ids_keep, mask, ids_restore = random_masking(b, s, self.params.mask_ratio, centres.device)
        z = self.transformer.forward_visible(centres, patches, ids_keep)
        pred, feats = self.decoder(z, centres, ids_restore)
        return masked_chamfer(pred, patches, mask), mask, z, feats

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        centres, patches = self.transformer.patches(normalised(self.encoder, views[0]))
        loss, mask, _, _ = self.masked_pass(centres, patches)
        return loss, {"masked": float(mask.mean())}
