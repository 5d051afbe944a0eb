"""The InfoNCE family beyond NT-Xent: SimCLR's pipeline (encoder, projection head, all view pairs)
with another objective. Hyperparameters come from the config's ``params`` section
(``--set params.temperature=0.2``); each loss, its formula and its paper are in
:mod:`selfsup.losses`.

- ``dcl``, ``dclw``: decoupled contrastive learning (Yeh et al. 2022).
- ``hcl``: hard negative sampling (Robinson et al. 2021); ``debiased``: its beta = 0 case
  (Chuang et al. 2020).
- ``isogclr``: individualised learned temperatures (Qiu et al. 2023), per-sample state in buffers
  (so in checkpoints), indexed by the batch's sample indices, written in ``after_step`` (so never
  by a step the loop skips); two views only.
- ``groco``: learning by sorting (Shvetsova et al. 2023), every view an anchor in turn; with
  multi-crop only the global crops are positives.
- ``supcon``: supervised contrastive (Khosla et al. 2020), all views at once, uses the labels
  (``-1`` = unlabelled); ``params.weight`` < 1 mixes in NT-Xent (semi-supervised).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from ..errors import ConfigError
from ..losses import ISogCLR as ISogCLRLoss
from ..losses import dcl, dclw, groco, hcl, supcon_mix
from ..models.encoder import Encoder
from . import register
from ._common import global_count
from .base import Batch, Context, Needs, Params
from .simclr import SimCLR


class _Tiled(Params):
    tiled: bool | None = None
    """Exact tiled loss (True), dense (False), or chosen by batch size (None)."""


class DCLParams(_Tiled):
    temperature: float = Field(default=0.1, gt=0)


class DCLWParams(DCLParams):
    sigma: float = Field(default=0.5, gt=0)


class HCLParams(_Tiled):
    temperature: float = Field(default=0.5, gt=0)
    tau_plus: float = Field(default=0.1, ge=0, lt=1)
    beta: float = Field(default=1.0, ge=0)


class DebiasedParams(_Tiled):
    temperature: float = Field(default=0.5, gt=0)
    tau_plus: float = Field(default=0.1, ge=0, lt=1)


class ISogCLRParams(Params):
    tau_init: float = Field(default=0.1, gt=0)
    gamma: float = Field(default=0.9, gt=0, le=1)
    rho: float = 0.3
    eta: float = Field(default=0.01, ge=0)
    beta: float = Field(default=0.9, gt=0, le=1)
    tau_min: float = Field(default=0.05, gt=0)
    tau_max: float = Field(default=0.7, gt=0)
    learn_tau: bool = True
    """False keeps every temperature at tau_init: SogCLR (Yuan et al. 2022)."""


class GroCoParams(Params):
    k: int = Field(default=10, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    steepness: float = Field(default=1.0, gt=0)
    art_lambda: float = Field(default=0.25, ge=0)
    stop_grad: bool = True
    """Detach the positives and negatives (the authors' default)."""


class SupConParams(_Tiled):
    temperature: float = Field(default=0.1, gt=0)
    base_temperature: float = Field(default=0.07, gt=0)
    """The loss is scaled by temperature / base_temperature (HobbitLong/SupContrast)."""
    weight: float = Field(default=1.0, ge=0, le=1)
    """lambda in lambda * SupCon + (1 - lambda) * NT-Xent."""


@register
class DCL(SimCLR):
    name = "dcl"
    paper = "Yeh et al. 2022, Decoupled Contrastive Learning"
    Params = DCLParams

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        return dcl(z1, z2, self.params.temperature, tiled=self.params.tiled)


@register
class DCLW(SimCLR):
    name = "dclw"
    paper = "Yeh et al. 2022, Decoupled Contrastive Learning (weighted, DCLW)"
    Params = DCLWParams

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        p = self.params
        return dclw(z1, z2, p.temperature, p.sigma, tiled=p.tiled)


@register
class HCL(SimCLR):
    name = "hcl"
    paper = "Robinson et al. 2021, Contrastive Learning with Hard Negative Samples"
    Params = HCLParams

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        p = self.params
        return hcl(z1, z2, p.temperature, p.tau_plus, p.beta, tiled=p.tiled)


@register
class Debiased(SimCLR):
    name = "debiased"
    paper = "Chuang et al. 2020, Debiased Contrastive Learning"
    Params = DebiasedParams

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        p = self.params
        return hcl(z1, z2, p.temperature, p.tau_plus, 0.0, tiled=p.tiled)


@register
class ISogCLR(SimCLR):
    name = "isogclr"
    paper = (
        "Qiu et al. 2023, Not All Semantics are Created Equal: Contrastive Self-supervised "
        "Learning with Automatic Temperature Individualization"
    )
    Params = ISogCLRParams
    needs = Needs(n_views=2)  # its per-sample state is updated once per step

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        p = params
        # the per-sample state is staged in forward and written in after_step, which the loop runs
        # only after a step it took: a skipped (non-finite) step never writes NaN into the state
        self.isog = ISogCLRLoss(
            ctx.n_samples,
            p.tau_init,
            p.gamma,
            p.rho,
            p.eta,
            p.beta,
            p.tau_min,
            p.tau_max,
            p.learn_tau,
            defer=True,
        )

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        out: Tensor = self.isog(z1, z2, batch.index)
        return out

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if len(views) != 2:
            raise ConfigError(f"isogclr uses exactly 2 views, got {len(views)}")
        z1, z2 = self.project(views)
        loss = self.contrast(z1, z2, batch)
        tau = self.isog.state.tau[batch.index.long()]
        return loss, {"tau_mean": float(tau.mean()), "tau_std": float(tau.std())}

    def after_step(self, step: int, total_steps: int) -> None:
        self.isog.commit()


@register
class GroCo(SimCLR):
    name = "groco"
    paper = (
        "Shvetsova et al. 2023, Learning by Sorting: Self-supervised Learning with Group "
        "Ordering Constraints"
    )
    Params = GroCoParams

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        return self._loss(torch.stack([z1, z2], 1))

    def _loss(self, z: Tensor, n_global: int | None = None) -> Tensor:
        p = self.params
        return groco(
            z,
            p.k,
            p.temperature,
            p.steepness,
            p.art_lambda,
            n_global=n_global,
            stop_grad=p.stop_grad,
        )

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = self.project(views)
        # with multi-crop only the global crops are positives (the authors' n_pos_augs)
        return self._loss(torch.stack(zs, 1), global_count(views)), {}


@register
class SupCon(SimCLR):
    name = "supcon"
    paper = "Khosla et al. 2020, Supervised Contrastive Learning"
    Params = SupConParams
    needs = Needs(labels=True)

    def contrast(self, z1: Tensor, z2: Tensor, batch: Batch) -> Tensor:
        return self._loss(torch.stack([z1, z2], 1), batch)

    def _loss(self, z: Tensor, batch: Batch) -> Tensor:
        p = self.params
        if batch.y is None:
            raise ConfigError(
                "supcon needs labels (batch.y); give labelled data (-1 marks unlabelled samples)"
            )
        return supcon_mix(z, batch.y, p.temperature, p.weight, p.base_temperature, tiled=p.tiled)

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        zs = self.project(views)
        return self._loss(torch.stack(zs, 1), batch), {}
