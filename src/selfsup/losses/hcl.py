"""HCL: contrastive learning with hard negative samples; with beta = 0, debiased contrastive
learning.

Robinson, Chuang, Sra, Jegelka. *Contrastive Learning with Hard Negative Samples.* ICLR 2021.
Chuang, Robinson, Lin, Torralba, Jegelka. *Debiased Contrastive Learning.* NeurIPS 2020 (beta = 0).

For 2B L2-normalised embeddings, anchor ``i`` with positive similarity ``s+`` and its N = 2B - 2
negatives' similarities ``s_j`` (the other samples, both views)::

    pos  = exp(s+ / t),   n_j = exp(s_j / t)
    w_j  = exp(beta s_j / t) / mean_k exp(beta s_k / t)              (importance weights)
    Ng   = max( (-tau_plus N pos + sum_j w_j n_j) / (1 - tau_plus),  N exp(-1 / t) )
    L_i  = -log( pos / (pos + Ng) )

averaged over the 2B anchors. ``tau_plus`` is the class prior (the chance that a "negative" shares
the anchor's class), ``beta`` the concentration on hard negatives. As in the authors' code the
weights are not detached. ``beta = 0, tau_plus = 0`` gives NT-Xent (positive in the denominator);
collinear embeddings give ``log(2B - 1)``. Defaults t = 0.5, tau_plus = 0.1, beta = 1.

Computed from two row log-sum-exps over the negatives (scales ``beta/t`` and ``(1+beta)/t``), so
it has the exact tiled path: ``sum_j w_j n_j = N exp(lse_{1+beta} - lse_beta)``. The final step is
evaluated relative to the row's largest term, so no exponential overflows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from ._pairs import check_pair, check_positive, pair_layout
from .tiled import row_lse


def hcl(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    *,
    tiled: bool | None = None,
) -> Tensor:
    """Mean hard-negative (HCL) loss of two (B, D) batches of paired embeddings.

    Examples
    --------
    >>> hcl(torch.randn(8, 16), torch.randn(8, 16), tau_plus=0.1, beta=1.0).shape
    torch.Size([])
    """
    check_pair("hcl", z1, z2)
    check_hcl(temperature, tau_plus, beta)
    p = pair_layout(z1, z2)
    exclude = torch.stack([p.self_idx, p.pos_idx], 1)
    rows = hcl_rows(p.q, p.k, p.qpos, exclude, p.n_keys - 2, temperature, tau_plus, beta, tiled)
    return rows.mean()


def check_hcl(temperature: float, tau_plus: float, beta: float) -> None:
    """One line for a temperature, class prior or concentration HCL cannot use."""
    check_positive(temperature=temperature)
    if not 0 <= tau_plus < 1:
        raise ConfigError(f"tau_plus must be in [0, 1), got {tau_plus}")
    if not beta >= 0:
        raise ConfigError(f"beta must be >= 0, got {beta}")


def hcl_rows(
    q: Tensor,
    k: Tensor,
    qpos: Tensor,
    exclude: Tensor,
    n: int,
    temperature: float,
    tau_plus: float,
    beta: float,
    tiled: bool | None,
) -> Tensor:
    """Per-anchor HCL loss of anchors ``q`` (unit rows) with positives ``qpos`` against the keys
    ``k`` minus the ``exclude`` indices of each row (``n`` negatives remain), in log space."""
    log_n = math.log(n)
    lse_1b = row_lse(q, k, (1.0 + beta) / temperature, exclude, tiled)
    lse_b = row_lse(q, k, beta / temperature, exclude, tiled) if beta > 0 else log_n
    log_rw = lse_1b - lse_b + log_n  # log sum_j w_j n_j
    s_pos = (q * qpos).sum(1) / temperature  # log pos
    log_floor = log_n - 1.0 / temperature
    top = torch.maximum(torch.maximum(s_pos, log_rw), torch.full_like(s_pos, log_floor)).detach()
    pos_ = torch.exp(s_pos - top)
    ng = (torch.exp(log_rw - top) - tau_plus * n * pos_) / (1.0 - tau_plus)
    ng = torch.maximum(ng, torch.exp(log_floor - top))
    return top + torch.log(pos_ + ng) - s_pos


def debiased(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    *,
    tiled: bool | None = None,
) -> Tensor:
    """Debiased contrastive loss (Chuang et al. 2020): :func:`hcl` with ``beta = 0``."""
    return hcl(z1, z2, temperature, tau_plus, 0.0, tiled=tiled)
