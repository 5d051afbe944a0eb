"""TS2Vec: hierarchical contrast of two overlapping random crops of each series.

Yue, Wang, Duan, Yang, Huang, Tong, Xu. *TS2Vec: Towards Universal Representation of Time Series.*
AAAI 2022; the authors' code ``yuezhihan/ts2vec`` (``ts2vec.py``: ``fit``).

Each step draws, for the whole batch, a crop length ``l`` in [2^(temporal_unit+1), L] (L: the
batch's longest valid length, at most ``max_train_length`` after a random window), an overlap
``[a, b)`` of that length, and two crops ``[a1, b)`` and ``[a, b2)`` with ``a1 <= a`` and
``b2 >= b``, shifted by a random offset per series. The encoder (TS2Vec's dilated encoder by
default, with its random timestamp mask in training) gives per-step representations of both crops;
their overlap (the last ``l`` steps of the first, the first ``l`` of the second: the same time
stamps seen in different contexts) enters
:func:`~selfsup.losses.ts2vec.hierarchical_contrastive_loss`. The two crops are cut from the first
two views, which are the series unchanged under the method's own view preset (``none``); another
``views.preset`` adds its augmentations.

No projection head: the loss works on the encoder's own per-step output; the instance
representation is its max over time. The authors' defaults: representation 320, hidden 64, depth 10
(the ``dilated`` backbone), AdamW lr 0.001, batch 8, ``temporal_unit`` 0, ``max_train_length``
3000, 200 iterations for a small data set. Like the authors (``torch.optim.swa_utils.AveragedModel``
over the encoder, updated once at construction and after every optimiser step), the encoder that is
evaluated and saved is the equal-weight average of the initial weights and of every iterate's
(``params.swa=true``); the trained weights are ``online``. ``params.swa=false`` evaluates the
encoder as trained.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, ClassVar, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.ts2vec import hierarchical_contrastive_loss
from ..models.encoder import Encoder
from . import register
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class TS2VecParams(Params):
    alpha: float = Field(default=0.5, ge=0, le=1)
    """Weight of the instance-wise contrast (1 - alpha: temporal); the paper's 0.5."""
    temporal_unit: int = Field(default=0, ge=0, le=16)
    """The first pyramid level with temporal contrast; crops are at least 2^(temporal_unit+1)
    steps."""
    max_train_length: int | None = Field(default=3000, ge=2)
    """Longer series are trained on a random window of this many steps (the authors' 3000)."""
    swa: bool = True
    """Evaluate (and save) the running equal-weight average of the encoder's weights over every
    step, as the authors do; ``false``: the last iterate."""


def per_step(encoder: nn.Module, method: str) -> nn.Module:
    bb = getattr(encoder, "backbone", None)
    if not hasattr(bb, "forward_steps"):
        raise ConfigError(
            f"method '{method}' needs a backbone with per-step outputs (the series backbones: "
            f"dilated, fcn, resnet1d, transformer), got {type(bb).__name__}"
        )
    return bb  # type: ignore[return-value]


def crop(x: Tensor, start: Tensor, length: int) -> Tensor:
    """``x[i, :, start[i]:start[i] + length]`` for every row ``i`` of (B, C, T), in one gather."""
    idx = start.view(-1, 1, 1) + torch.arange(length, device=x.device).view(1, 1, -1)
    return x.gather(2, idx.expand(-1, x.shape[1], -1))


@register
class TS2Vec(Method):
    name = "ts2vec"
    paper = "Yue et al. 2022, TS2Vec: Towards Universal Representation of Time Series"
    Params: ClassVar[type[Params]] = TS2VecParams
    #: TS2Vec's augmentations are its own (random crops and masking): no hand-made views
    needs = Needs(view_preset="none")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        per_step(encoder, self.name)
        if (
            self.params.swa
        ):  # ``encoder`` (evaluated, saved) becomes the average of ``online``'s iterates
            self.online = encoder
            avg = copy.deepcopy(encoder)
            for q in avg.parameters():
                q.requires_grad_(False)
            self.encoder = avg
        # the authors' AveragedModel is updated once with the initial weights before training
        # (``ts2vec.py``: ``self.net.update_parameters(self._net)`` in ``__init__``): they count
        self.register_buffer("n_averaged", torch.ones((), dtype=torch.long))

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Fold the new weights into the average: ``avg += (w - avg) / (n + 1)``, ``n`` counting the
        initial weights (the average starts as a copy of them)."""
        if not self.params.swa:
            return
        n = int(cast(Tensor, self.n_averaged))
        for pa, po in zip(self.encoder.parameters(), self.online.parameters()):
            pa.copy_(po) if n == 0 else pa.add_((po.detach() - pa) / (n + 1))
        for ba, bo in zip(self.encoder.buffers(), self.online.buffers()):
            ba.copy_(bo)
        cast(Tensor, self.n_averaged).add_(1)

    @classmethod
    def data_defaults(
        cls, params: ParamsModel, n_samples: int, sample_shape: tuple[int, ...], epochs: int
    ) -> dict[str, dict[str, Any]]:
        """The authors' training rule (``train.py``, ``ts2vec.py``): batch 8; 200 iterations when
        the training array holds at most 100,000 values, else 600 (as whole epochs of
        ``n // batch`` steps, so the count rounds up to an epoch's end); AdamW at lr 1e-3 with
        torch's default weight decay (0.01) on every parameter, at a constant rate."""
        batch = max(2, min(8, n_samples))
        size = n_samples * math.prod(sample_shape)
        iters = 200 if size <= 100_000 else 600
        return {
            "train": {"batch_size": batch, "epochs": math.ceil(iters / max(1, n_samples // batch))},
            "optim": {
                "name": "adamw",
                "lr": 1e-3,
                "weight_decay": 0.01,
                "decay_all": True,
                "schedule": "constant",
                "warmup_epochs": 0.0,
            },
        }

    @classmethod
    def requirements(cls, params: ParamsModel) -> Needs:
        """The shortest longest-series a batch may have: one crop of 2^(temporal_unit+1) steps."""
        unit = cast(TS2VecParams, params).temporal_unit
        return cls.needs.with_(min_length=int(2 ** (unit + 1)))

    def steps(self, x: Tensor) -> Tensor:
        """Per-step representations (B, T, D) of raw-unit series (the encoder's normalisation
        first)."""
        enc = self.online if self.params.swa else self.encoder
        forward_steps: Callable[[Tensor], tuple[Tensor, Tensor]]
        forward_steps = enc.backbone.forward_steps  # type: ignore[assignment]
        h, _ = forward_steps((x - cast(Tensor, enc.mean)) / cast(Tensor, enc.std))
        return h.transpose(1, 2)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        x1, x2 = views[0], views[1]
        seen = ~torch.isnan(x1).all(dim=1)  # (B, T)
        length = int(seen.any(0).nonzero().max()) + 1 if seen.any() else 1
        dev = x1.device
        if p.max_train_length is not None and length > p.max_train_length:
            w0 = int(torch.randint(length - p.max_train_length + 1, ()))
            x1, x2 = x1[..., w0 : w0 + p.max_train_length], x2[..., w0 : w0 + p.max_train_length]
            length = p.max_train_length
        lo = min(2 ** (p.temporal_unit + 1), length)

        def r(a: int, b: int) -> int:  # uniform integer in [a, b)
            return int(torch.randint(a, b, ()))

        crop_l = r(lo, length + 1)
        left = r(0, length - crop_l + 1)
        right = left + crop_l
        eleft = r(0, left + 1)
        eright = r(right, length + 1)
        offset = torch.randint(-eleft, length - eright + 1, (x1.shape[0],), device=dev)
        z1 = self.steps(crop(x1, offset + eleft, right - eleft))[:, -crop_l:]
        z2 = self.steps(crop(x2, offset + left, eright - left))[:, :crop_l]
        with torch.autocast(dev.type, enabled=False):
            loss = hierarchical_contrastive_loss(z1.float(), z2.float(), p.alpha, p.temporal_unit)
        return loss, {"crop_len": float(crop_l)}
