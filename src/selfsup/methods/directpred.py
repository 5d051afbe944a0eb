"""DirectPred and DirectCopy: BYOL with a linear predictor set directly, never trained.

Tian, Chen, Ganguli, *Understanding Self-Supervised Learning Dynamics without Contrastive Pairs*,
ICML 2021 (DirectPred). A running correlation of the online projector outputs ``f`` (all views,
detached, not centred) is kept, ``F <- rho F + (1 - rho) mean(f f^T)`` after every step. Every
``freq`` steps ``F = U diag(s) U^T`` is eigendecomposed and the predictor weight set to
``W = U diag(p) U^T`` with ``p_j = sqrt(max(s_j, 0) / max(s)) + eps``.

DirectCopy (Wang et al. 2021, *Towards Demystifying Representation Learning with Non-contrastive
Self-supervision*): the predictor is the running correlation itself, no eigendecomposition,
``W = F^ + eps I`` with ``F^`` the correlation *normalised*, as the paper states it. Which norm the
paper divides by could not be read from this machine (neither the paper's text nor a DirectCopy
release was available to the search tools); the spectral norm is used, ``F^ = F / ||F||_2`` (for
the PSD ``F`` this is its largest eigenvalue, the same division DirectPred makes by ``max(s)``), so
that ``eps`` means the same for any scale of the projector outputs. The authors' public trainer
(facebookresearch/luckmatters, ``ssl/real-dataset/byol_trainer.py``, ``predictor_reg ==
"directcopy"``) writes ``M + eps I`` with the unnormalised running correlation ``M``: only the
direction of ``W`` matters to the cosine loss, but there ``eps`` is relative to the scale of ``M``.

The loss is BYOL's; the target momentum is *constant*, 0.996 by default, as in the authors' code
(luckmatters ``ssl/real-dataset/config/byol_config.yaml``: ``trainer.m: 0.996``, applied unchanged
every step by ``_update_target_network_parameters``), not BYOL's cosine schedule. ``W`` is the
weight of ``predictor``, a bias-free ``nn.Linear`` without gradient; ``F`` is the buffer ``corr``;
both are saved in checkpoints. Before the first update W is the identity.
"""

from __future__ import annotations

from typing import cast

import torch
from pydantic import Field
from torch import Tensor, nn

from . import register
from .base import Params
from .byol import BYOL


class DirectPredParams(Params):
    momentum: float = Field(default=0.996, ge=0, le=1)
    """Target momentum, constant over the run (the authors' code)."""
    rho: float = Field(default=0.3, ge=0, lt=1)
    eps: float = Field(default=0.01, ge=0)
    freq: int = Field(default=1, ge=1)
    """Recompute the predictor every this many steps."""


def directpred_weight(corr: torch.Tensor, eps: float) -> torch.Tensor:
    """``U diag(p) U^T`` with ``p_j = sqrt(max(s_j, 0) / max(s)) + eps`` for
    ``corr = U diag(s) U^T``."""
    s, u = torch.linalg.eigh(corr.double())
    top = s.max().clamp_min(1e-12)
    p = (s.clamp_min(0) / top).sqrt() + eps
    w: Tensor = ((u * p) @ u.t()).to(corr.dtype)
    return w


def directcopy_weight(corr: torch.Tensor, eps: float) -> torch.Tensor:
    """``F / ||F||_2 + eps I``."""
    c = corr.double()
    top = torch.linalg.matrix_norm(c, ord=2).clamp_min(1e-12)
    w: Tensor = (c / top + eps * torch.eye(len(c), dtype=c.dtype, device=c.device)).to(corr.dtype)
    return w


@register
class DirectPred(BYOL):
    name = "directpred"
    paper = (
        "Tian, Chen, Ganguli 2021, Understanding Self-Supervised Learning Dynamics without "
        "Contrastive Pairs"
    )
    Params = DirectPredParams
    set_weight = staticmethod(directpred_weight)

    corr: Tensor
    updates: Tensor

    def make_predictor(self, dim: int, hidden: int) -> nn.Module:
        self.register_buffer("corr", torch.zeros(dim, dim))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        pred = nn.Linear(
            dim, dim, bias=False
        )  # set, not trained: no gradient, not in the optimiser
        pred.weight.requires_grad_(False)
        with torch.no_grad():
            pred.weight.copy_(torch.eye(dim))
        return pred

    @torch.no_grad()
    def update_predictor(self, f: torch.Tensor) -> None:
        p = self.params
        self.corr.mul_(p.rho).add_(f.t() @ f / len(f), alpha=1 - p.rho)
        if int(self.updates) % p.freq == 0:
            cast(nn.Linear, self.predictor).weight.copy_(self.set_weight(self.corr, p.eps))
        self.updates += 1

    def momentum_at(self, step: int, total_steps: int) -> float:
        return float(self.params.momentum)  # constant, unlike BYOL's cosine schedule

    def after_step(self, step: int, total_steps: int) -> None:
        super().after_step(step, total_steps)
        zs = getattr(self, "_online_z", None)
        if zs is not None:
            self.update_predictor(torch.cat(zs).detach())
            self._online_z = None


@register
class DirectCopy(DirectPred):
    name = "directcopy"
    paper = (
        "Wang et al. 2021, Towards Demystifying Representation Learning with Non-contrastive "
        "Self-supervision"
    )
    set_weight = staticmethod(directcopy_weight)
