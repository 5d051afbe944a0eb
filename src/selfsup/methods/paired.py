"""Paired (two-tower) objectives: two modalities of the same samples contrasted with each other.

The encoder is a :class:`~selfsup.models.two_tower.TwoTower` (each modality's encoder and its
projection head into the shared space); the views come interleaved, ``[a_1, b_1, a_2, b_2, ...]``
(:mod:`selfsup.modalities.paired`), and pair ``k`` is ``(a_k, b_k)``. The methods know nothing of
the modalities themselves: they contrast embedding ``a_k`` with ``b_k`` across the batch.

- ``clip``: symmetric InfoNCE with a learnable temperature, its logit scale clamped to
  ``[0, log 100]`` after every optimiser step as OpenCLIP does (Radford et al. 2021).
- ``isogclr_pair``: bimodal iSogCLR (Qiu et al. 2023), LibAUC's ``GCLoss_v2``: per-sample
  learned temperatures for each modality, state in buffers, written after a step that was taken.
- ``xhcl``: cross-modal hard negative sampling (Choi et al. 2023): HCL's reweighting of the
  other modality's negatives, both directions.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch
from pydantic import Field
from torch import Tensor

from ..errors import ConfigError
from ..losses import ClipLoss, ISogCLRBimodal
from ..losses.xhcl import xhcl
from ..models.encoder import Encoder
from ..models.two_tower import TwoTower
from . import register
from .base import Batch, Context, Method, Needs, Params


class _PairedMethod(Method):
    """Embeds view ``2k`` with tower a and view ``2k + 1`` with tower b; averages ``pair_loss`` over
    k."""

    needs = Needs(towers=2)

    @property
    def two_tower(self) -> TwoTower:
        return cast(TwoTower, self.encoder)

    def project(self, views: list[Tensor]) -> list[Tensor]:
        tt = self.two_tower
        return [tt.embed_a(v) if i % 2 == 0 else tt.embed_b(v) for i, v in enumerate(views)]

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        """The shared-space embeddings (what the collapse monitor and diagnostics look at)."""
        return self.project(views)

    def pair_loss(self, za: Tensor, zb: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if len(views) < 2 or len(views) % 2:
            raise ConfigError(
                f"method '{self.name}' needs pairs of views (a, b), got {len(views)} view(s)"
            )
        zs = [z.float() for z in self.project(views)]
        k = len(zs) // 2
        with torch.autocast(zs[0].device.type, enabled=False):  # logits in fp32 under bf16 autocast
            loss = sum(self.pair_loss(zs[2 * i], zs[2 * i + 1], batch) for i in range(k)) / k
        return cast(Tensor, loss), self.logs(batch)

    def logs(self, batch: Batch) -> dict[str, float]:
        return {}


class ClipParams(Params):
    init_temperature: float = Field(default=0.07, gt=0)
    """Initial temperature: the logit scale starts at log(1 / 0.07), as in CLIP and OpenCLIP."""
    tiled: bool | None = None
    """Exact tiled loss (True), dense (False), or chosen by batch size (None)."""


@register
class Clip(_PairedMethod):
    name = "clip"
    paper = (
        "Radford et al. 2021, Learning Transferable Visual Models From Natural Language Supervision"
    )
    Params = ClipParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.clip = ClipLoss(params.init_temperature, params.tiled)

    def pair_loss(self, za: Tensor, zb: Tensor, batch: Batch) -> Tensor:
        out: Tensor = self.clip(za, zb)
        return out

    def logs(self, batch: Batch) -> dict[str, float]:
        return {"logit_scale": float(self.clip.logit_scale.detach())}

    def after_step(self, step: int, total_steps: int) -> None:
        self.clip.clamp_()  # OpenCLIP: clamp the parameter to [0, log 100] after the optimiser step


class ISogCLRPairParams(Params):
    """LibAUC's ``GCLoss_v2`` defaults (tuned for image-text pairs)."""

    tau_init: float = Field(default=0.01, gt=0)
    gamma: float = Field(default=0.9, gt=0, le=1)
    rho: float = 6.0
    eta: float = Field(default=0.01, ge=0)
    beta: float = Field(default=0.9, gt=0, le=1)
    tau_min: float = Field(default=0.005, gt=0)
    tau_max: float = Field(default=0.05, gt=0)
    learn_tau: bool = True
    """False keeps every temperature at tau_init (bimodal SogCLR)."""


@register
class ISogCLRPair(_PairedMethod):
    name = "isogclr_pair"
    paper = (
        "Qiu et al. 2023, Not All Semantics are Created Equal: Contrastive Self-supervised "
        "Learning with Automatic Temperature Individualization (bimodal)"
    )
    Params = ISogCLRPairParams
    needs = Needs(towers=2, n_views=2)  # one view per modality; its state is updated once a step

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        p = params
        # staged in forward, written in after_step: a step the loop skips never writes its state
        self.isog = ISogCLRBimodal(
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

    def pair_loss(self, za: Tensor, zb: Tensor, batch: Batch) -> Tensor:
        out: Tensor = self.isog(za, zb, batch.index)
        return out

    def logs(self, batch: Batch) -> dict[str, float]:
        i = batch.index.long()
        return {
            "tau_a_mean": float(self.isog.state_a.tau[i].mean()),
            "tau_b_mean": float(self.isog.state_b.tau[i].mean()),
        }

    def after_step(self, step: int, total_steps: int) -> None:
        self.isog.commit()


class XHCLParams(Params):
    temperature: float = Field(default=0.1, gt=0)
    """CMC's temperature for cross-modal pairs (razzu/cmc-cmkm); HCL used 0.5 for two image
    views."""
    tau_plus: float = Field(default=0.1, ge=0, lt=1)
    beta: float = Field(default=1.0, ge=0)
    negatives: Literal["cross", "all"] = "cross"
    """``cross``: the B - 1 samples of the other modality (the paper's description, CMC's layout);
    ``all``: the 2B - 2 other samples of both modalities (HCL's two-view layout)."""
    tiled: bool | None = None


@register
class XHCL(_PairedMethod):
    name = "xhcl"
    paper = (
        "Choi et al. 2023, Multimodal Contrastive Learning with Hard Negative Sampling for "
        "Human Activity Recognition"
    )
    Params = XHCLParams

    def pair_loss(self, za: Tensor, zb: Tensor, batch: Batch) -> Tensor:
        p = self.params
        return xhcl(za, zb, p.temperature, p.tau_plus, p.beta, negatives=p.negatives, tiled=p.tiled)
