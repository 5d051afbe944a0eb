"""DCL and DCLW: decoupled contrastive learning.

Yeh, Hong, Hsu, Liu, Chen, LeCun. *Decoupled Contrastive Learning.* ECCV 2022.

DCL removes the positive from the denominator of NT-Xent. For 2B L2-normalised embeddings (two views
of B samples), anchor ``i`` with positive ``i'``::

    L_i = -w_i s(z_i, z_i') / t + log sum_{k != i, k != i'} exp(s(z_i, z_k) / t)

(the sum runs over the 2B - 2 other samples' embeddings in both views), averaged over all 2B
anchors. DCL has ``w_i = 1``. DCLW weights the positive term by the detached

    w_i = 2 - exp(s(z_i, z_i') / sigma) / mean_k exp(s(z_k, z_k') / sigma)  =  2 - B softmax_i

so that easy positives (already very similar) count less. With all embeddings collinear every term
is ``log(2B - 2)``; as ``sigma -> inf`` DCLW tends to DCL. Defaults t = 0.1, sigma = 0.5 (the
paper's). lightly's ``DCLLoss`` returns the *sum* of the two views' means, twice this value.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._pairs import check_pair, check_positive, pair_layout
from .distributed import gather
from .tiled import row_lse


def _dcl(
    z1: Tensor, z2: Tensor, temperature: float, sigma: float | None, tiled: bool | None
) -> Tensor:
    p = pair_layout(z1, z2)
    exclude = torch.stack([p.self_idx, p.pos_idx], 1)
    lse = row_lse(p.q, p.k, 1.0 / temperature, exclude, tiled)
    cos = (p.q * p.qpos).sum(1)
    w: Tensor | float
    if sigma is None:
        w = 1.0
    else:
        b = z1.shape[0]
        s_glob = gather(cos[:b].detach()) / sigma  # the B (or R x B) positive similarities
        log_mean = torch.logsumexp(s_glob, 0) - math.log(s_glob.numel())
        w = 2.0 - torch.exp(cos.detach() / sigma - log_mean)
    return (lse - w * cos / temperature).mean()


def dcl(z1: Tensor, z2: Tensor, temperature: float = 0.1, *, tiled: bool | None = None) -> Tensor:
    """Mean decoupled contrastive loss of two (B, D) batches of paired embeddings.

    Examples
    --------
    >>> dcl(torch.randn(8, 16), torch.randn(8, 16)).shape
    torch.Size([])
    """
    check_pair("dcl", z1, z2)
    check_positive(temperature=temperature)
    return _dcl(z1, z2, temperature, None, tiled)


def dclw(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.1,
    sigma: float = 0.5,
    *,
    tiled: bool | None = None,
) -> Tensor:
    """Mean weighted decoupled contrastive loss (DCLW); ``sigma`` > 0 sets the weighting's softness.

    Examples
    --------
    >>> dclw(torch.randn(8, 16), torch.randn(8, 16), sigma=0.5).shape
    torch.Size([])
    """
    check_pair("dclw", z1, z2)
    check_positive(temperature=temperature, sigma=sigma)
    return _dcl(z1, z2, temperature, sigma, tiled)
