"""OBoW: predict the teacher's bag of visual words from a perturbed view.

Gidaris, Bursuc, Puy, Komodakis, Cord, Perez, *OBoW: Online Bag-of-Visual-Words Generation for
Self-Supervised Learning*, CVPR 2021 (``valeoai/obow``, ``obow/builder_obow.py``). A momentum
teacher (EMA of the encoder, momentum 0.99 rising to 1 on a cosine) maps a view to local features
(the cells of its last feature map, :func:`~selfsup.models.local.local_features`); they are softly
assigned to a vocabulary of K = 8192 visual words, max-pooled and L1-normalised into a bag of words
(:func:`~selfsup.losses.bow_targets`, inverse temperature ``inv_delta / mu`` with ``mu`` the running
mean of the nearest-word distance). The vocabulary is a queue: after each step, one random local
feature per teacher feature map enters it (the authors' ``no_averaging`` update; their default
averages 3x3 neighbourhoods first, which assumes a 2-D grid). The student predicts the BoW from its
pooled feature of another view: ``logits = kappa z^T W``, ``W`` generated from the vocabulary by
L2norm-Linear-BN-ReLU-Linear-L2norm (hidden 2C, output C), and the loss is KL(BoW || softmax).
Defaults from the authors' ImageNet configs: ``inv_delta`` 10, ``kappa`` 5, 8192 words.

Deviations: one BoW level (the last feature map; the authors also use the penultimate one); the
teacher sees each global crop (not a separate uncropped image, which methods never get) and every
other crop predicts its BoW; no border cells are dropped (a border exists only on a 2-D grid).
Needs an encoder with local features: a ConvNet or ResNet (feature maps), a ViT (patch tokens) or a
convolutional or transformer series encoder (time steps); a table MLP is refused.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..losses import FeatureQueue, bow_loss, bow_targets, word_distances
from ..losses.distributed import all_sum, gather, world
from ..models.encoder import Encoder
from ..models.local import local_features, require_local_features
from . import register
from ._common import cosine_momentum, ema_update, encode, frozen_copy, global_count
from ._distill import distribution_signals
from .base import Batch, Context, Method, Params


class OBoWParams(Params):
    num_words: int = Field(default=8192, ge=2)
    inv_delta: float = Field(default=10.0, gt=0)
    """Base inverse temperature of the soft word assignment (code default 15, configs 10)."""
    kappa: float = Field(default=5.0, gt=0)
    """Scale of the predicted logits (code default 8, configs 5)."""
    momentum: float = Field(default=0.99, ge=0, le=1)
    """Starting teacher momentum; it rises to 1 on a cosine (the authors' ``alpha_cosine``)."""
    min_dist_decay: float = Field(default=0.99, ge=0, lt=1)


class WeightGenerator(nn.Module):
    """OBoW's dynamic weight generator: words (K, C) -> unit-norm classifier weights (K, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, 2 * dim, bias=False),
            nn.BatchNorm1d(2 * dim),
            nn.ReLU(inplace=True),
            nn.Linear(2 * dim, dim),
        )

    def forward(self, words: Tensor) -> Tensor:
        out: Tensor = self.net(F.normalize(words, dim=1))
        return F.normalize(out, dim=1)


@register
class OBoW(Method):
    name = "obow"
    paper = (
        "Gidaris et al. 2021, OBoW: Online Bag-of-Visual-Words Generation for "
        "Self-Supervised Learning"
    )
    Params = OBoWParams

    min_dist: Tensor

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        require_local_features(encoder, self.name)
        c = encoder.out_dim
        self.teacher = frozen_copy(encoder)
        self.generator = WeightGenerator(c)
        self.words = FeatureQueue(params.num_words, c)
        with torch.no_grad():  # the authors' start: randn clamped at 0
            self.words.queue.copy_(torch.randn(params.num_words, c).clamp_min(0))
        self.register_buffer("min_dist", torch.full((), 0.5))
        self._pending: list[Tensor] = []
        self._mu: Tensor | None = None
        self._signals: dict[str, float] = {}

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p, g = self.params, global_count(views)
        feats = encode(self.encoder, views)
        w = self.generator(self.words.queue.detach())
        logits = [p.kappa * f.float() @ w.t().float() for f in feats]
        with torch.no_grad():
            local = [local_features(self.teacher, v) for v in views[:g]]
            dists = [word_distances(f, self.words.queue) for f in local]
            mu = torch.stack([d.amin(dim=-1).mean() for d in dists]).mean()
            targets = [bow_targets(d, p.inv_delta, self.min_dist) for d in dists]
        pairs = [(i, v) for i in range(g) for v in range(len(views)) if v != i]
        loss = sum(bow_loss(logits[v], targets[i]) for i, v in pairs) / len(pairs)
        self._pending = [
            f[torch.arange(len(f)), torch.randint(f.shape[1], (len(f),))] for f in local
        ]
        self._mu = mu
        self._signals = distribution_signals(targets[0])
        return torch.as_tensor(loss), {"bow_min_dist": float(self.min_dist)}

    def collapse_signals(self) -> dict[str, float]:
        """Entropies of the teacher's BoW targets at the last step (read by the collapse
        monitor)."""
        return self._signals

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        ema_update(
            self.teacher, self.encoder, cosine_momentum(self.params.momentum, step, total_steps)
        )
        if self._mu is not None:
            mu = all_sum(self._mu) / world()[1]
            self.min_dist.mul_(self.params.min_dist_decay).add_(
                mu, alpha=1 - self.params.min_dist_decay
            )
        for f in self._pending:
            self.words.push(gather(f.float()))
        self._pending, self._mu = [], None
