"""TS2Vec's hierarchical contrastive loss.

Yue, Wang, Duan, Yang, Huang, Tong, Xu. *TS2Vec: Towards Universal Representation of Time Series.*
AAAI 2022. Checked against the authors' code: ``yuezhihan/ts2vec`` (``models/losses.py``,
``ts2vec.py``).

Two views of a batch give per-step representations ``z1, z2`` of shape (B, T, D) that are aligned
in time (step ``t`` of both views is the same time stamp: the overlap of TS2Vec's two random crops).
At each step the similarity is the plain dot product ``s(a, b) = a . b`` (no normalisation, no
temperature).

Instance-wise contrast (the other series at the same time stamp are the negatives), for sample
``i`` at step ``t``, over the 2B representations of step ``t`` in both views::

    l_inst(i, t) = -log exp(s(z1[i,t], z2[i,t]))
                   / sum_{j in 1..B, v in {1,2}, (v,j) != (1,i)} exp(s(z1[i,t], zv[j,t]))

Temporal contrast (the other time stamps of the same series are the negatives), for sample ``i``
at step ``t``, over the 2T representations of series ``i`` in both views::

    l_temp(i, t) = -log exp(s(z1[i,t], z2[i,t]))
                   / sum_{u in 1..T, v in {1,2}, (v,u) != (1,t)} exp(s(z1[i,t], zv[i,u]))

Each is averaged over every anchor of both views (the symmetric terms with ``z2`` as anchor
included). The hierarchical loss sums ``alpha * l_inst + (1 - alpha) * l_temp`` at every level of a
max-pool pyramid (kernel 2, stride 2 along time, the last odd step dropped) while T > 1, temporal
contrast only from level ``temporal_unit`` on, then ``alpha * l_inst`` at T = 1, and divides by the
number of levels. With B = 1 the instance term is 0; at T = 1 the temporal term is 0.

With all representations equal, every term is ``log(2B - 1)`` (instance) and ``log(2T - 1)``
(temporal, T at that level).

Examples
--------
>>> z1, z2 = torch.randn(8, 50, 16), torch.randn(8, 50, 16)
>>> hierarchical_contrastive_loss(z1, z2).shape
torch.Size([])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _contrast(z1: Tensor, z2: Tensor) -> Tensor:
    """Mean over anchors of ``-log softmax`` of the positive, contrasting along dim -2 of (..., N,
    D): the 2N candidates of each leading index are both views' N rows; the anchor itself
    excluded."""
    n = z1.shape[-2]
    z = torch.cat([z1, z2], dim=-2)  # (..., 2N, D)
    sim = z @ z.transpose(-1, -2)  # (..., 2N, 2N)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logp = F.log_softmax(sim.masked_fill(eye, float("-inf")), dim=-1)
    i = torch.arange(n, device=z.device)
    pos = torch.cat([logp[..., i, n + i], logp[..., n + i, i]], dim=-1)
    return -pos.mean()


def instance_contrastive_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """TS2Vec's instance-wise contrast of (B, T, D) representations (0 when B = 1)."""
    if z1.shape[0] == 1:
        return z1.new_zeros(())
    return _contrast(z1.transpose(0, 1), z2.transpose(0, 1))


def temporal_contrastive_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """TS2Vec's temporal contrast of (B, T, D) representations (0 when T = 1)."""
    if z1.shape[1] == 1:
        return z1.new_zeros(())
    return _contrast(z1, z2)


def hierarchical_contrastive_loss(
    z1: Tensor, z2: Tensor, alpha: float = 0.5, temporal_unit: int = 0
) -> Tensor:
    """TS2Vec's loss of two aligned (B, T, D) per-step representations (see the module docstring).

    Parameters
    ----------
    z1, z2 : (B, T, D) tensors, step ``t`` of both the same time stamp.
    alpha : weight of the instance-wise term (``1 - alpha`` the temporal one); the paper's 0.5.
    temporal_unit : the first pyramid level with temporal contrast (0: every level).
    """
    if z1.shape != z2.shape or z1.dim() != 3:
        raise ValueError(
            f"z1 and z2 must be (B, T, D) of the same shape, got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}"
        )
    loss = z1.new_zeros(())
    levels = 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        if levels >= temporal_unit and alpha != 1:
            loss = loss + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        levels += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.shape[1] == 1:
        if alpha != 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        levels += 1
    return loss / levels
