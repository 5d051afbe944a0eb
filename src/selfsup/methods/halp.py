"""HaLP on MoCo v2: synthetic latent positives with a controlled hardness (``halp``).

Shah et al., *HaLP: Hallucinating Latent Positives for Skeleton-based Self-Supervised Learning of
Actions*, CVPR 2023 (authors' code: ``anshulbshah/HaLP``). Every ``update_every`` steps the newest
``proto_keys`` keys of the MoCo queue are clustered (spherical k-means) into ``n_prototypes``
prototypes; then, for each key, ``n_positives`` points are synthesised in closed form between the
key and a neighbouring prototype (:func:`~selfsup.losses.halp.halp_positives`, hardness
``hardness``) and the query is pulled towards the ones that stay in the key's cluster, with weight
``mu`` (:func:`~selfsup.losses.halp.halp_loss`). Defaults are the authors' (20 prototypes, 20
candidates, skip the closest, lambda 0.8), except ``n_positives`` (16 instead of 100, for CPU
batches) and the prototype refresh, counted in steps here.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from ..losses import info_nce
from ..losses.halp import halp_loss, halp_positives, spherical_kmeans
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context
from .moco import MoCo, MoCoParams


class HaLPParams(MoCoParams):
    n_prototypes: int = Field(default=20, ge=2)
    n_positives: int = Field(default=16, ge=1)
    n_closest: int = Field(default=20, ge=1)
    """Candidate prototypes to move towards (after skipping the closest ``skip_closest``)."""
    skip_closest: int = Field(default=1, ge=0)
    hardness: float = Field(default=0.8, ge=0, le=1)
    """The paper's lambda: t is drawn in [(1 - hardness) t_max, t_max]."""
    mu: float = Field(default=1.0, ge=0)
    """Weight of the HaLP term (authors: 1 by default, 2 in their NTU-60 script)."""
    proto_keys: int = Field(default=256, ge=2)
    """The newest queue entries clustered into prototypes."""
    update_every: int = Field(default=100, ge=1)
    """Steps between prototype updates; the first comes once the queue has been filled."""
    kmeans_iters: int = Field(default=10, ge=1)


@register
class HaLP(MoCo):
    name = "halp"
    paper = (
        "Shah et al. 2023, HaLP: Hallucinating Latent Positives for Skeleton-based "
        "Self-Supervised Learning"
    )
    Params = HaLPParams
    prototypes: Tensor
    has_prototypes: Tensor
    keys_seen: Tensor
    steps_done: Tensor

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.register_buffer("prototypes", torch.zeros(params.n_prototypes, ctx.model.proj_dim))
        self.register_buffer("has_prototypes", torch.zeros((), dtype=torch.bool))
        self.register_buffer("keys_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        q, k = self.query(views[0]), self.key(views[1])
        loss = info_nce(q, k, self.queue.queue, p.temperature)
        self._keys = k
        logs = {"halp_good": 0.0}
        if bool(self.has_prototypes) and p.mu > 0:
            syn = halp_positives(
                k.float(), self.prototypes, p.n_positives, p.hardness, p.n_closest, p.skip_closest
            )
            extra = halp_loss(q.float(), syn["positives"], syn["good"], p.temperature)
            loss = loss + p.mu * extra
            logs = {
                "halp_good": float(syn["good"].float().mean()),
                "halp_loss": float(extra.detach()),
            }
        return loss, logs

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        if self._keys is not None:
            self.keys_seen += len(self._keys)
        super().after_step(step, total_steps)
        self.steps_done += 1
        p = self.params
        filled = int(self.keys_seen) >= self.queue.size
        if filled and (not bool(self.has_prototypes) or int(self.steps_done) % p.update_every == 0):
            n = min(p.proto_keys, self.queue.size)
            newest = (int(self.queue.ptr) - 1 - torch.arange(n)) % self.queue.size
            self.prototypes.copy_(
                spherical_kmeans(self.queue.queue[newest], p.n_prototypes, p.kmeans_iters)
            )
            self.has_prototypes.fill_(True)
