"""DeepCluster-v2: k-means pseudo-labels from a memory of last epoch's embeddings.

Caron et al., *Unsupervised Learning of Visual Features by Contrasting Cluster Assignments*,
NeurIPS 2020 (section 4 and appendix: DeepCluster-v2, ``facebookresearch/swav``,
``main_deepclusterv2.py``). SwAV's network (projector, L2 normalisation); a memory holds each
sample's embedding of each of the first two (global) crops. At the start of every epoch, spherical
k-means (:func:`~selfsup.models.prototypes.spherical_kmeans`, 10 iterations, K = 3000) runs on the
memory, once per head (3 heads; head h clusters the memory of crop h mod 2); its centroids become
the head's prototypes (never trained) and its assignments the pseudo-labels. The loss is the
cross-entropy of every crop's scores against its sample's label, ``CE(z^T C_h / t, y_h)`` (t = 0.1),
averaged over crops and heads. The memory is filled before the first step by one pass over the
training set (the authors' ``init_memory``) and then updated after each step with the step's
embeddings (all ranks' under DDP, so each rank keeps the whole memory).

Deviations: the memory is indexed by sample, so samples left out of an epoch by the last incomplete
batch keep their older embedding; K defaults to a tenth of the training samples when that is below
3000. Works on every modality (pooled features only).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..losses import gather
from ..models import mlp
from ..models.encoder import Encoder
from ..models.prototypes import spherical_kmeans
from . import register
from ._common import encode
from ._distill import check_prototypes, default_prototypes, distribution_signals, steps_per_epoch
from .base import Batch, Context, Method, Params


class DeepClusterV2Params(Params):
    temperature: float = Field(default=0.1, gt=0)
    n_prototypes: int | None = Field(default=None, ge=2)
    """Clusters per head; default 3000 (the authors') or a tenth of the training samples."""
    heads: int = Field(default=3, ge=1)
    kmeans_iters: int = Field(default=10, ge=1)


@register
class DeepClusterV2(Method):
    name = "deepclusterv2"
    paper = (
        "Caron et al. 2020, Unsupervised Learning of Visual Features by Contrasting Cluster "
        "Assignments (DeepCluster-v2)"
    )
    Params = DeepClusterV2Params

    memory: Tensor
    centroids: Tensor
    assignments: Tensor
    steps_done: Tensor

    #: the crops whose embeddings the memory keeps (the authors' crops_for_assign)
    n_memory = 2

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        k = params.n_prototypes or default_prototypes(ctx)
        check_prototypes(self.name, k, ctx)
        m, n = ctx.model, max(ctx.n_samples, 1)
        self.k = k
        self.projector = mlp(encoder.out_dim, m.proj_hidden, m.proj_dim, layers=2)
        self.register_buffer(
            "memory", F.normalize(torch.randn(self.n_memory, n, m.proj_dim), dim=2)
        )
        self.register_buffer("centroids", torch.zeros(params.heads, k, m.proj_dim))
        self.register_buffer("assignments", torch.full((params.heads, n), -100, dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.epoch_steps = steps_per_epoch(ctx)
        self._pending: tuple[Tensor, Tensor] | None = None
        self._signals: dict[str, float] = {}

    def project(self, views: list[Tensor]) -> list[Tensor]:
        return encode(lambda x: F.normalize(self.projector(self.encoder(x)), dim=1), views)

    @torch.no_grad()
    def prepare(self, x: Tensor, views: Any) -> None:
        """Fill the memory with one pass over the training set (views of each chunk), then
        cluster."""
        bs = self.ctx.batch_size or 256
        for start in range(0, len(x), bs):
            idx = torch.arange(start, min(start + bs, len(x)), device=self.memory.device)
            vs = views(x[start : start + bs])
            zs = self.project(vs[: self.n_memory])
            for j, z in enumerate(zs):
                self.memory[j, idx] = z.float()
        self.cluster()

    @torch.no_grad()
    def cluster(self) -> None:
        """k-means on the memory for every head: its centroids and the samples' labels."""
        for h in range(self.params.heads):
            g = torch.Generator().manual_seed(int(self.steps_done) * 1000 + h)
            c, a = spherical_kmeans(
                self.memory[h % self.n_memory], self.k, self.params.kmeans_iters, g
            )
            self.centroids[h] = c
            self.assignments[h] = a

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if not bool((self.assignments >= 0).any()):
            self.cluster()  # no prepare() (a method used outside the trainer): cluster the memory
        zs = [z.float() for z in self.project(views)]
        z = torch.cat(zs)
        t = self.params.temperature
        loss = z.new_zeros(())
        for h in range(self.params.heads):
            y = self.assignments[h][batch.index].repeat(len(zs))
            loss = loss + F.cross_entropy(z @ self.centroids[h].t() / t, y, ignore_index=-100)
        loss = loss / self.params.heads
        self._pending = (batch.index, torch.stack([zz.detach() for zz in zs[: self.n_memory]]))
        self._signals = distribution_signals(
            F.softmax(zs[0].detach() @ self.centroids[0].t() / t, 1)
        )
        return loss, {}

    def collapse_signals(self) -> dict[str, float]:
        return self._signals

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        if self._pending is not None:
            idx, z = self._pending
            idx, z = gather(idx), gather(z.transpose(0, 1)).transpose(0, 1)  # every rank's samples
            self.memory[:, idx] = z.to(self.memory.dtype)
            self._pending = None
        self.steps_done += 1
        if int(self.steps_done) % self.epoch_steps == 0:  # a new epoch starts: new pseudo-labels
            self.cluster()
