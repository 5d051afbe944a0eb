"""MSN: Masked Siamese Networks, prototype assignments of masked views match the unmasked view's.

Assran, Caron, Misra, Bojanowski, Bordes, Vincent, Joulin, Rabbat, Ballas, *Masked Siamese
Networks for Label-Efficient Learning*, ECCV 2022. The student (a ViT and a projection MLP) sees
the *anchor* views with a random fraction of their patches dropped (the tokens are removed, as in
MAE's encoder): one global view and every local ("focal") view. An EMA teacher (the same encoder and
MLP) sees the other global view, the *target*, unmasked. Both are compared by cosine with K
learnable prototypes; the anchors' softmax (temperature 0.1) is trained towards the target's
softmax sharpened with ``T = 0.25`` (an effective temperature of 0.025) and balanced by Sinkhorn,
plus the mean-entropy-maximisation regulariser (:func:`~selfsup.losses.msn.msn_loss`).

Defaults from the authors' ``facebookresearch/msn`` (``configs/pretrain/msn_vits16.yaml``,
``src/msn_train.py``): temperature 0.1, sharpening 0.25, Sinkhorn on, me-max weight 1, patch drop
0.15 (ViT-S; the paper uses more for larger ViTs), teacher momentum from 0.996 rising *linearly*
towards 1 over 1.25 x the run, projection MLP of three linear layers with BatchNorm and GELU,
prototypes initialised uniformly in ``+-1/sqrt(d)`` and normalised in the forward. Deviations:
1024 prototypes on ImageNet, here at most a tenth of the training samples (the family's
:func:`~selfsup.methods._distill.default_prototypes`); the MLP's width and output are the config's
``model.proj_hidden`` / ``model.proj_dim`` (the authors': 2048 / 256); patches are dropped per
sample (the authors drop the same patches in every image of a batch); the feature is the
backbone's pooled output (the mean of the kept patch tokens for ``pool="mean"``; the authors: the
class token); the prototypes get the optimiser's weight decay (the authors exempt them; they are
normalised in the forward, so decay only shrinks their norm).

Needs a backbone with patch tokens (``Needs(encoder="tokens")``: a ViT); a convolutional one is
refused in one line when the method is built.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.msn import msn_targets, msn_terms
from ..models.encoder import Encoder
from ..models.vit import ViT
from . import register
from ._common import ema_update, encode, frozen_copy
from ._distill import check_prototypes, default_prototypes, distribution_signals
from .base import Batch, Context, Method, Needs, Params
from .mae import normalised


class MSNParams(Params):
    n_prototypes: int | None = Field(default=None, ge=2)
    """Prototypes K (the authors': 1024); default: 1024 or a tenth of the samples if fewer."""
    temperature: float = Field(default=0.1, gt=0)
    sharpen: float = Field(default=0.25, gt=0, le=1)
    """Target sharpening ``T`` (``p^(1/T)``, renormalised); 0.25 at temperature 0.1 = 0.025."""
    sinkhorn_iterations: int = Field(default=3, ge=0)
    me_max_weight: float = Field(default=1.0, ge=0)
    mask_ratio: float = Field(default=0.15, ge=0, lt=1)
    """Fraction of the anchor views' patches dropped (the authors' ``patch_drop``)."""
    momentum: float = Field(default=0.996, ge=0, le=1)
    """Starting teacher momentum; it rises linearly towards 1, reaching it at 1.25 x the run."""
    head_layers: int = Field(default=3, ge=1)


def msn_head(in_dim: int, hidden: int, out_dim: int, layers: int = 3) -> nn.Sequential:
    """The authors' projection MLP: (Linear, BatchNorm, GELU) x (layers - 1), then Linear."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.GELU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    for m in mods:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*mods)


@register
class MSN(Method):
    name = "msn"
    paper = "Assran et al. 2022, Masked Siamese Networks for Label-Efficient Learning"
    Params = MSNParams
    needs = Needs(encoder="tokens")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        if ctx.n_views + ctx.local_crops < 2:
            raise ConfigError(
                f"method 'msn' needs a target view and at least one anchor view, got "
                f"views.n_views={ctx.n_views} and views.local_crops={ctx.local_crops}; set "
                "--set views.n_views=2"
            )
        k = params.n_prototypes or default_prototypes(ctx, cap=1024)
        check_prototypes(self.name, k, ctx)
        d = ctx.model.proj_dim
        self.head = msn_head(encoder.out_dim, ctx.model.proj_hidden, d, params.head_layers)
        self.prototypes = nn.Parameter(torch.empty(k, d).uniform_(-(d**-0.5), d**-0.5))
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self._signals: dict[str, float] = {}

    def anchor(self, x: Tensor) -> Tensor:
        """The student's embeddings of ``x`` with ``mask_ratio`` of each image's patches dropped."""
        if self.params.mask_ratio <= 0:
            return cast(Tensor, self.head(self.encoder(x)))
        bb = cast(ViT, self.encoder.backbone)  # any backbone with ViT's token interface
        xn = normalised(self.encoder, x)
        ids_keep, _, _ = bb.mask_tokens(len(x), bb.token_grid(xn), self.params.mask_ratio, x.device)
        return cast(Tensor, self.head(bb.pooled(bb.forward_visible(xn, ids_keep))))

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p = self.params
        # the target: view 0 (global); anchors: the other global views, then the local (focal) ones
        anchors = torch.cat(encode(self.anchor, views[1:]))
        with torch.no_grad():
            target = self.teacher_head(self.teacher_encoder(views[0]))
        with torch.autocast(anchors.device.type, enabled=False):  # cosines in fp32 under bf16
            a, t, q = anchors.float(), target.float(), self.prototypes.float()
            ce, me_max = msn_terms(a, t, q, p.temperature, p.sharpen, p.sinkhorn_iterations)
            with torch.no_grad():
                self._signals = distribution_signals(msn_targets(t, q, p.temperature, p.sharpen, 0))
        return ce + p.me_max_weight * me_max, {
            "loss_ce": float(ce.detach()),
            "me_max": float(me_max.detach()),
        }

    def collapse_signals(self) -> dict[str, float]:
        """The sharpened targets' entropies before Sinkhorn (read by the collapse monitor)."""
        return self._signals

    def collapse_hint(self, kind: str) -> str:
        return {
            "uniform": "lower params.sharpen (sharper targets) or the learning rate",
            "dominant": "raise params.me_max_weight or keep params.sinkhorn_iterations at 3",
        }.get(kind, "lower the learning rate, raise params.momentum or add local crops")

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The authors' schedule: linear from ``momentum`` to 1 over 1.25 x the run."""
        m0 = float(self.params.momentum)
        return min(1.0, m0 + (1.0 - m0) * step / max(1.25 * total_steps, 1.0))

    def after_step(self, step: int, total_steps: int) -> None:
        m = self.momentum_at(step, total_steps)
        ema_update(self.teacher_encoder, self.encoder, m)
        ema_update(self.teacher_head, self.head, m)
