"""VICReg: variance, invariance and covariance regularisation.

Bardes, Ponce, LeCun. *VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning.* ICLR 2022.

For two batches ``z1, z2`` of shape (B, D)::

    inv  = (1 / (B D)) sum_b ||z1_b - z2_b||^2                          (mean squared error)
    var  = (1/2) sum_{z in z1, z2} (1/D) sum_j max(0, gamma - sqrt(Var(z_:j) + eps))
    cov  =       sum_{z in z1, z2} (1/D) sum_{i != j} Cov(z)_ij^2
    L    = inv_weight * inv + var_weight * var + cov_weight * cov

with unbiased variance and covariance over the batch: the variance term is the *mean* of the two
views' terms, the covariance term their *sum*, as in the authors' code
(facebookresearch/vicreg, ``main_vicreg.py``, ``VICReg.forward``) and lightly's ``VICRegLoss``
(the paper's equation writes the covariance term per branch, ``c(Z) + c(Z')``). The paper's
weights are 25, 25, 1 with gamma = 1 and eps = 1e-4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _var_cov(z: Tensor, gamma: float, eps: float) -> tuple[Tensor, Tensor]:
    b, d = z.shape
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + eps)
    var = F.relu(gamma - std).mean()
    cov = z.t() @ z / (b - 1)
    off = cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()
    return var, off / d


def vicreg(
    z1: Tensor,
    z2: Tensor,
    inv: float = 25.0,
    var: float = 25.0,
    cov: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    """VICReg loss of two batches of paired embeddings.

    Parameters
    ----------
    z1, z2 : Tensor of shape (B, D), B >= 2
        Expander outputs of the two views.
    inv, var, cov : float
        Weights of the invariance, variance and covariance terms (25, 25, 1 in the paper).
    gamma : float
        Target standard deviation of each dimension.
    eps : float
        Added to the variance before the square root.

    Examples
    --------
    >>> vicreg(torch.randn(32, 16), torch.randn(32, 16)).shape
    torch.Size([])
    """
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] < 2:
        raise ValueError(
            "vicreg expects two (B, D) tensors of equal shape with B >= 2, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    inv_term = F.mse_loss(z1, z2)
    v1, c1 = _var_cov(z1, gamma, eps)
    v2, c2 = _var_cov(z2, gamma, eps)
    return inv * inv_term + var * (v1 + v2) / 2 + cov * (c1 + c2)
