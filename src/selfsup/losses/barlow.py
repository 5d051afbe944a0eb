"""Barlow Twins: redundancy reduction on the cross-correlation of two views.

Zbontar, Jing, Misra, LeCun, Deny. *Barlow Twins: Self-Supervised Learning via Redundancy
Reduction.* ICML 2021.

Each embedding dimension is standardised over the batch (mean 0, variance 1, biased variance as in
a BatchNorm without affine parameters); ``C = z1n^T z2n / B`` is the D x D cross-correlation::

    L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2

The first term makes the two views' dimensions agree (invariance), the second decorrelates
dimensions (redundancy reduction). The paper uses lambda = 5e-3 with D = 8192.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _standardise(z: Tensor, eps: float) -> Tensor:
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def barlow_twins(z1: Tensor, z2: Tensor, lambda_: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """Barlow Twins loss of two batches of paired embeddings.

    Parameters
    ----------
    z1, z2 : Tensor of shape (B, D), B >= 2
        Projector outputs of the two views; row ``i`` of each is the same sample.
    lambda_ : float
        Weight of the off-diagonal (redundancy) term, 5e-3 in the paper.
    eps : float
        Added to the variance before the square root (a constant dimension stays finite).

    Returns
    -------
    Tensor
        Scalar loss (a sum over dimensions, so it grows with D).

    Examples
    --------
    >>> z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    >>> barlow_twins(z1, z2).shape
    torch.Size([])
    """
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] < 2:
        raise ValueError(
            "barlow_twins expects two (B, D) tensors of equal shape with B >= 2, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    b = z1.shape[0]
    c = _standardise(z1, eps).t() @ _standardise(z2, eps) / b
    diag = torch.diagonal(c)
    on = (1 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambda_ * off
