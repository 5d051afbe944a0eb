"""Online cluster distillation across two branches of a paired sample.

After the echocardiography paper's online cluster distillation: one branch's cluster assignments,
computed online by Sinkhorn-Knopp over learned prototypes, are the targets that the other branch
predicts, so that one modality (there: a video of the heart) learns the clusters that another
(there: its frames, by an image encoder) forms (Mishra et al. 2025, DISCOVR; its code, read for
facts only, adds the term to each branch's own DINO and masked-video losses and predicts hard
argmax codes at t = 0.1). This is a generic version built from SwAV's parts
(:mod:`~selfsup.methods.swav`), with these choices:

- The data is paired (two modalities of the same samples, a two-tower encoder); each tower projects
  into a shared space (the tower heads of :class:`~selfsup.models.two_tower.TwoTower`), L2
  normalised, where one set of K prototypes lives (shared, so that a cluster means the same in
  both branches).
- ``direction`` picks the source branch whose codes are targets: ``a_to_b`` (tower a's codes,
  e.g. the image branch distilled into the video branch), ``b_to_a``, or ``both``. Every other view
  predicts each source view's codes: the other branch's views (the distillation) and the source
  branch's own other views (which keep the source's clusters meaningful; with one view per tower
  and one direction, the source tower learns only through the shared prototypes).
- Codes: Sinkhorn (``eps = 0.05``, 3 iterations, global sums), prototypes frozen for the first
  epoch and renormalised after each step, an optional queue of past source embeddings: SwAV's
  defaults, as the paper builds on SwAV.
- Predictions at ``t = 0.25``, not SwAV's 0.1. In SwAV a view predicts the codes of another view
  of the same sample through the same network, so its first predictions already lean the right
  way. Here the predicting branch starts unrelated to the source branch: at 0.1 its first
  predictions (cosines of about 1/sqrt(D) over 0.1) are worse than uniform, the loss starts
  about 1 / (2 D t^2) = 0.4 nats above log K (D = 128), and the quickest way down is to flatten
  every prediction, which flattens the codes as well: the run collapses to uniform codes (the loss
  at log K, BENCHMARKS.md, issue 22). At 0.25 the start is 0.06 nats above log K and the branches
  learn to predict each other instead.
- The collapse monitor reads the entropies of the codes (the targets), not of the predictions.

With ``views.n_views = 2`` each tower gets one view per sample (``[a, b]``); ``n_views = 4`` gives
two (``[a1, b1, a2, b2]``).
"""

from __future__ import annotations

from typing import Literal, cast

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..models.two_tower import TwoTower
from . import register
from ._distill import distribution_signals
from .base import Batch, Needs
from .swav import SwAV, SwAVParams


class ClusterDistillParams(SwAVParams):
    temperature: float = Field(default=0.25, gt=0)
    """The student's softmax temperature (SwAV: 0.1). Higher than SwAV's because a branch starts
    unrelated to the branch whose codes it predicts: at 0.1 its first predictions are worse than
    uniform, and the quickest way down the loss is to flatten every prediction (the collapse)."""
    direction: Literal["a_to_b", "b_to_a", "both"] = "both"
    """Whose cluster codes are the targets: tower a's, tower b's or both."""


@register
class ClusterDistill(SwAV):
    name = "cluster_distill"
    paper = (
        "Mishra et al. 2025, Self-supervised Learning of Echocardiographic Video Representations "
        "via Online Cluster Distillation (DISCOVR); built on Caron et al. 2020, SwAV"
    )
    Params = ClusterDistillParams
    needs = Needs(towers=2)

    @property
    def two_tower(self) -> TwoTower:
        return cast(TwoTower, self.encoder)

    def embed_dim(self) -> int:
        return int(self.ctx.model.proj_dim)

    def make_projector(self) -> nn.Module:
        return nn.Identity()  # the towers' heads project into the shared space

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        tt = self.two_tower
        return [
            F.normalize(tt.embed_a(v) if i % 2 == 0 else tt.embed_b(v), dim=1)
            for i, v in enumerate(views)
        ]

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, logs = super().forward(views, batch)
        # the targets (the first source view's codes, as Sinkhorn gave them), not the predictions
        self._signals = distribution_signals(self._codes[0])
        return loss, logs

    def collapse_signals(self) -> dict[str, float]:
        """Entropies of the first source view's Sinkhorn codes, last step (the targets the other
        branch predicts; read by the collapse monitor): a row entropy stuck at log K means the
        codes went uniform and nothing is distilled. The predictions themselves are read at
        ``temperature`` 0.25, flatter than SwAV's, so their entropy would warn too early."""
        return self._signals

    def collapse_hint(self, kind: str) -> str:
        if kind == "uniform":
            return (
                "raise params.temperature (the student's) or lower the learning rate; give each "
                "branch two views (views.n_views=4) so that it also learns from itself"
            )
        return super().collapse_hint(kind)

    def assigned(self, views: list[Tensor]) -> list[int]:
        d = self.params.direction
        src = {"a_to_b": (0,), "b_to_a": (1,), "both": (0, 1)}[d]
        return [i for i in range(len(views)) if i % 2 in src]

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        return self.embed_views(views)
