"""SwAV: online clustering with swapped prediction of equipartitioned codes.

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, *Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments*, NeurIPS 2020. Encoder -> projector (Linear-BN-ReLU-Linear) ->
L2 normalisation -> scores against K normalised prototypes. The codes of each global crop come
from Sinkhorn-Knopp (:func:`~selfsup.losses.sinkhorn`, ``eps = 0.05``, 3 iterations, global sums
under DDP) and every other crop (global and local) predicts them (:func:`~selfsup.losses.swav_loss`,
``t = 0.1``). As in the authors' ``main_swav.py``: the prototypes are renormalised after every step
and get no gradient during the first epoch (``freeze_prototypes_niters``); with small batches a
queue of the global crops' past embeddings (one per global crop, ``queue_length`` 3840, from epoch
15 in the authors' batch-256 recipe) joins the batch in Sinkhorn once it is full, so that the
equipartition is over more samples than there are prototypes.

Works on every modality (it only needs pooled features); multi-crop (``views.local_crops``) adds
local crops that predict the global crops' codes and are never assigned codes themselves.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..losses import FeatureQueue, swav_loss
from ..losses.distributed import world
from ..models import mlp
from ..models.encoder import Encoder
from ..models.prototypes import Prototypes
from . import register
from ._common import encode, global_count
from ._distill import (
    check_prototypes,
    default_prototypes,
    distribution_signals,
    epoch_steps,
)
from .base import Batch, Context, Method, Params


class SwAVParams(Params):
    temperature: float = Field(default=0.1, gt=0)
    epsilon: float = Field(default=0.05, gt=0)
    """Sinkhorn's entropy weight (smaller: harder codes)."""
    sinkhorn_iterations: int = Field(default=3, ge=1)
    n_prototypes: int | None = Field(default=None, ge=2)
    """Number of prototypes K; default 3000 (the authors') or a tenth of the training samples."""
    freeze_prototypes_epochs: float = Field(default=1.0, ge=0)
    """The prototypes get no gradient during this many first epochs (SwAV: 313 iterations, one
    ImageNet epoch at batch 4096)."""
    queue_size: int | None = Field(default=None, ge=0)
    """Past embeddings per global crop that join Sinkhorn; default 3840 (the authors' batch-256
    recipe) capped at the training set, when the batch is below 256, else 0 (no queue)."""
    queue_start_epochs: float = Field(default=15.0, ge=0)
    """The queue is filled from this epoch on and used once full (the authors'
    epoch_queue_starts)."""


@register
class SwAV(Method):
    name = "swav"
    paper = (
        "Caron et al. 2020, Unsupervised Learning of Visual Features by Contrasting Cluster "
        "Assignments"
    )
    Params = SwAVParams

    steps_done: Tensor
    queued: Tensor
    prototypes: Prototypes

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        k = params.n_prototypes or default_prototypes(ctx)
        check_prototypes(self.name, k, ctx)
        dim = self.embed_dim()
        self.projector = self.make_projector()
        self.prototypes = Prototypes(dim, k)
        self.freeze_steps = epoch_steps(params.freeze_prototypes_epochs, ctx)
        self.queue_start = epoch_steps(params.queue_start_epochs, ctx)
        size = params.queue_size
        if size is None:
            bs = ctx.batch_size or 256
            size = 0 if bs >= 256 else min(3840, ctx.n_samples or 3840)
        size = size // world()[1]  # per rank: the union over ranks is the single-process queue
        #: one queue per assigned global crop (the first two), or none
        self.queue_list = [FeatureQueue(size, dim) for _ in range(2)] if size else []
        self.queues = nn.ModuleList(self.queue_list)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("queued", torch.zeros((), dtype=torch.long))
        self._pending: list[Tensor] = []
        self._signals: dict[str, float] = {}

    # -- the parts a subclass (cluster_distill) replaces ------------------------------------------
    def embed_dim(self) -> int:
        return int(self.ctx.model.proj_dim)

    def make_projector(self) -> nn.Module:
        m = self.ctx.model
        return mlp(self.encoder.out_dim, m.proj_hidden, m.proj_dim, layers=2)

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        """L2-normalised projections, one (B, D) tensor per view."""
        return encode(lambda x: F.normalize(self.projector(self.encoder(x)), dim=1), views)

    def assigned(self, views: list[Tensor]) -> list[int]:
        """The views whose codes are computed (the global crops)."""
        return list(range(global_count(views)))

    # -- the step ---------------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return int(self.steps_done) < self.freeze_steps

    def queue_ready(self) -> bool:
        return bool(self.queue_list) and int(self.queued) >= self.queue_list[0].size

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        zs = [z.float() for z in self.embed_views(views)]
        a = self.assigned(views)
        order = a + [i for i in range(len(zs)) if i not in a]
        scores = [self.prototypes(zs[i], self.frozen) for i in order]
        queue_scores: list[Tensor | None] | None = None
        if self.queue_ready():
            with torch.no_grad():
                queue_scores = [
                    self.prototypes(self.queue_list[j].queue, True)
                    if j < len(self.queue_list)
                    else None
                    for j in range(len(a))
                ]
        codes: list[Tensor] = []
        loss = swav_loss(
            scores,
            len(a),
            p.temperature,
            p.epsilon,
            p.sinkhorn_iterations,
            queue_scores,
            codes_out=codes,
        )
        self._codes = codes  # the assigned views' codes, in order (read by cluster_distill)
        self._pending = [zs[i].detach() for i in a[: len(self.queue_list)]]
        self._signals = distribution_signals(F.softmax(scores[0].detach() / p.temperature, dim=1))
        return loss, {"prototypes_frozen": float(self.frozen)}

    def collapse_signals(self) -> dict[str, float]:
        """Entropies of the first global crop's predicted cluster distribution, last step (read by
        the collapse monitor): a row entropy stuck at log K means the predictions stay uniform."""
        return self._signals

    def collapse_hint(self, kind: str) -> str:
        """What to try when the collapse monitor sees ``kind`` (uniform, dominant, rank)."""
        return {
            "uniform": "lower params.temperature or params.epsilon, or the learning rate",
            "dominant": "give Sinkhorn more samples than prototypes (params.queue_size, a larger "
            "batch) or fewer prototypes (params.n_prototypes)",
        }.get(kind, "use a queue (params.queue_size) at small batches or lower the learning rate")

    def after_step(self, step: int, total_steps: int) -> None:
        self.prototypes.normalise_()
        if self.queue_list and int(self.steps_done) >= self.queue_start and self._pending:
            for q, z in zip(self.queue_list, self._pending, strict=False):
                q.push(z)
            self.queued += len(self._pending[0])
        self._pending = []
        self.steps_done += 1

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        return [self.encoder(v) for v in views]
