"""MoCo v2, MoCHi and MoCo v3.

- ``moco``: He et al., *Momentum Contrast for Unsupervised Visual Representation Learning*, CVPR
  2020, with the v2 changes (MLP head, stronger views, t = 0.2; Chen et al. 2020). A query encoder
  is trained; a key encoder follows it by momentum; keys of past batches form a queue of negatives
  (loss :func:`~selfsup.losses.info_nce`). The paper shuffles BatchNorm across GPUs so that the
  batch statistics cannot leak which key matches which query. On one device this is done by
  *split* BatchNorm: both encoders normalise ``bn_splits`` sub-batches separately, and the key batch
  is permuted before the key encoder and un-permuted after, so a key's sub-batch differs from its
  query's. ``bn_splits = 1`` disables it.
- ``mochi``: Kalantidis et al., *Hard Negative Mixing for Contrastive Learning*, NeurIPS 2020.
  MoCo plus :func:`~selfsup.losses.mochi_negatives` MoCHi(N, s, s') after a warm-up; the mixes are
  detached extra logits and never enqueued.
- ``mocov3``: Chen, Xie, He, *An Empirical Study of Training Self-Supervised Vision Transformers*,
  ICCV 2021. Symmetric, a predictor on the query side, in-batch keys (no queue), momentum rising
  from ``momentum`` to 1 on a cosine schedule, loss ``2 t CE(q k^T / t, diagonal)`` per direction.
  The authors' code (facebookresearch/moco-v3, ``moco/builder.py``, ``main_moco.py``) has two
  recipes, chosen here by the backbone: ``MoCo_ResNet`` for convolutional backbones (a 2-layer
  projector, a 2-layer predictor *without* BatchNorm on its output, t = 1.0, the ``--moco-t``
  default) and ``MoCo_ViT`` for backbones whose name contains ``vit`` (a 3-layer projector, the
  predictor with a final BatchNorm, t = 0.2 as in the ViT commands). Both projectors end in a
  BatchNorm without affine parameters; ``params.temperature`` overrides the recipe's.

These methods use exactly one query view and one key view (MoCo v3: the two views of the symmetric
loss); none of their papers uses multi-crop, so more views or local crops are refused when the
method is built rather than silently ignored.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..losses import FeatureQueue, gather, info_nce, mochi_negatives
from ..losses.distributed import world
from ..models import mlp, projection_head
from ..models.encoder import Encoder
from . import register
from ._common import cosine_momentum, ema_update, frozen_copy
from .base import Batch, Context, Method, Needs, Params


class MoCoParams(Params):
    temperature: float = Field(default=0.2, gt=0)
    queue_size: int = Field(default=4096, ge=1)
    momentum: float = Field(default=0.99, ge=0, le=1)
    bn_splits: int = Field(default=4, ge=1)
    """Split BatchNorm into this many sub-batches, keys shuffled across them (1: off)."""
    symmetric: bool = False
    """Also use view 2 as query and view 1 as key (doubles the keys enqueued per step)."""


@register
class MoCo(Method):
    name = "moco"
    paper = (
        "He et al. 2020, Momentum Contrast for Unsupervised Visual Representation Learning "
        "(v2: Chen et al. 2020)"
    )
    Params = MoCoParams
    needs = Needs(n_views=2)  # one query, one key

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.head = projection_head(encoder.out_dim, m.proj_hidden, m.proj_dim)
        self.key_encoder = frozen_copy(encoder)
        self.key_head = frozen_copy(self.head)
        self.queue = FeatureQueue(params.queue_size, m.proj_dim)
        self._keys: torch.Tensor | None = None

    def _splits(self, n: int) -> int:
        return max(1, min(int(self.params.bn_splits), n // 2))  # BatchNorm needs >= 2 samples

    def _split(self, encoder: nn.Module, head: nn.Module, x: Tensor) -> Tensor:
        return torch.cat([head(encoder(c)) for c in x.tensor_split(self._splits(len(x)))])

    def query(self, x: Tensor) -> Tensor:
        return F.normalize(self._split(self.encoder, self.head, x), dim=1)

    @torch.no_grad()
    def key(self, x: Tensor) -> Tensor:
        if self._splits(len(x)) == 1:
            return F.normalize(self.key_head(self.key_encoder(x)), dim=1)
        perm = torch.randperm(len(x), device=x.device)
        k = self._split(self.key_encoder, self.key_head, x[perm])
        return F.normalize(k[torch.argsort(perm)], dim=1)

    def extra_negatives(self, q: Tensor) -> Tensor | None:
        return None

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        q, k = self.query(views[0]), self.key(views[1])
        loss = info_nce(q, k, self.queue.queue, p.temperature, self.extra_negatives(q))
        keys = [k]
        if p.symmetric:
            q2, k1 = self.query(views[1]), self.key(views[0])
            loss = (
                loss + info_nce(q2, k1, self.queue.queue, p.temperature, self.extra_negatives(q2))
            ) / 2
            keys.append(k1)
        self._keys = torch.cat([gather(k) for k in keys])  # every rank's keys enter the queue (DDP)
        return loss, {}

    def after_step(self, step: int, total_steps: int) -> None:
        ema_update(self.key_encoder, self.encoder, self.params.momentum)
        ema_update(self.key_head, self.head, self.params.momentum)
        if self._keys is not None:
            self.queue.push(self._keys)
            self._keys = None


class MoCHiParams(MoCoParams):
    n_hard: int = Field(default=1024, ge=1)
    """N: the hardest queue entries per query that are mixed (capped at the queue size)."""
    n_mix: int = Field(default=1024, ge=0)
    """s: mixes of two hard negatives."""
    n_mix_query: int = Field(default=128, ge=0)
    """s': mixes of the query with a hard negative."""
    warmup_steps: int = Field(default=0, ge=0)
    warmup_epochs: float = Field(default=0.0, ge=0)
    """No mixing before this many steps plus epochs (epochs counted as training samples / batch)."""


@register
class MoCHi(MoCo):
    name = "mochi"
    paper = "Kalantidis et al. 2020, Hard Negative Mixing for Contrastive Learning"
    Params = MoCHiParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.steps_done: Tensor
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def mixing(self, batch_size: int) -> bool:
        p = self.params
        per_epoch = max(self.ctx.n_samples // max(batch_size, 1), 1)
        return bool(int(self.steps_done) >= p.warmup_steps + p.warmup_epochs * per_epoch)

    def extra_negatives(self, q: Tensor) -> Tensor | None:
        p = self.params
        if p.n_mix + p.n_mix_query == 0 or not self.mixing(len(q)):
            return None
        return cast(Tensor, mochi_negatives(q, self.queue.queue, p.n_hard, p.n_mix, p.n_mix_query))

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, logs = super().forward(views, batch)
        logs["mixing"] = float(self.mixing(len(views[0])))
        return loss, logs

    def after_step(self, step: int, total_steps: int) -> None:
        super().after_step(step, total_steps)
        self.steps_done += 1


class MoCoV3Params(Params):
    temperature: float | None = Field(default=None, gt=0)
    """None: the recipe's (1.0 for convolutional backbones, 0.2 for ViTs)."""
    momentum: float = Field(default=0.99, ge=0, le=1)
    """Starting momentum; it rises to 1 on a cosine schedule."""


def is_vit(backbone: str) -> bool:
    return "vit" in str(backbone).lower()


@register
class MoCoV3(Method):
    name = "mocov3"
    paper = "Chen, Xie, He 2021, An Empirical Study of Training Self-Supervised Vision Transformers"
    Params = MoCoV3Params
    needs = Needs(n_views=2)

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        vit = is_vit(m.backbone)
        self.recipe = "vit" if vit else "resnet"
        self.head = mlp(
            encoder.out_dim, m.proj_hidden, m.proj_dim, layers=3 if vit else 2, last_bn=True
        )
        self.predictor = mlp(m.proj_dim, m.proj_hidden, m.proj_dim, layers=2, last_bn=vit)
        self.temperature = (
            params.temperature if params.temperature is not None else (0.2 if vit else 1.0)
        )
        self.key_encoder = frozen_copy(encoder)
        self.key_head = frozen_copy(self.head)

    def _ctr(self, q: Tensor, k: Tensor) -> Tensor:
        t = self.temperature
        logits = (
            F.normalize(q, dim=1) @ gather(F.normalize(k, dim=1)).t() / t
        )  # every rank's keys (DDP)
        return (
            2
            * t
            * F.cross_entropy(logits, torch.arange(len(q), device=q.device) + world()[0] * len(q))
        )

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x = torch.cat(views[:2])
        q1, q2 = self.predictor(self.head(self.encoder(x))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.key_head(self.key_encoder(x)).chunk(2)
        return self._ctr(q1, k2) + self._ctr(q2, k1), {}

    def after_step(self, step: int, total_steps: int) -> None:
        m = cosine_momentum(self.params.momentum, step, total_steps)
        ema_update(self.key_encoder, self.encoder, m)
        ema_update(self.key_head, self.head, m)
