"""GRACE's contrastive loss with intra- and inter-view negatives.

Zhu, Xu, Yu, Liu, Wu, Wang. *Deep Graph Contrastive Representation Learning.* ICML 2020 GRL+
workshop (arXiv 2006.04131, Eq. 1-2); authors' code: CRIPAC-DIG/GRACE, ``model.py``
(``Model.semi_loss`` and ``Model.loss``).

For projected embeddings ``u_i`` (view 1) and ``v_i`` (view 2) of node ``i``, ``s`` the cosine
similarity and temperature ``tau``::

    l(u_i, v_i) = -log  e^{s(u_i, v_i)/tau} / ( e^{s(u_i, v_i)/tau}
                                              + sum_{k != i} e^{s(u_i, v_k)/tau}     (inter-view)
                                              + sum_{k != i} e^{s(u_i, u_k)/tau} )   (intra-view)

    L = (1 / 2N) sum_i [ l(u_i, v_i) + l(v_i, u_i) ]

Each anchor has 2N - 2 negatives: the other nodes in both views (its own copy in its own view is
left out). With the intra-view terms removed it is the symmetric InfoNCE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _semi(u: Tensor, v: Tensor, tau: float) -> Tensor:
    refl = u @ u.t() / tau
    between = u @ v.t() / tau
    n = len(u)
    eye = torch.eye(n, dtype=torch.bool, device=u.device)
    logits = torch.cat([between, refl.masked_fill(eye, float("-inf"))], dim=1)
    return torch.logsumexp(logits, dim=1) - between.diagonal()


def grace_loss(h1: Tensor, h2: Tensor, tau: float = 0.4) -> Tensor:
    """Mean GRACE loss of two (N, D) views of the same nodes (normalised here), both directions.

    Examples
    --------
    >>> grace_loss(torch.randn(6, 4), torch.randn(6, 4)).shape
    torch.Size([])
    """
    if h1.shape != h2.shape or h1.ndim != 2:
        raise ValueError(
            f"grace_loss needs two (N, D) views of the same shape, got {tuple(h1.shape)} and "
            f"{tuple(h2.shape)}"
        )
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    u, v = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    return 0.5 * (_semi(u, v, tau) + _semi(v, u, tau)).mean()
