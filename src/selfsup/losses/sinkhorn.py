"""Sinkhorn-Knopp equipartition of a batch over prototypes (SwAV's online codes).

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, *Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments*, NeurIPS 2020 (section 3.1, appendix A.1). For scores
``S = Z C^T`` (B samples, K prototypes), the codes solve

    max_Q  Tr(Q^T S) + eps H(Q)   over   Q 1_K = 1_B / B,  Q^T 1_B = 1_K / K

whose solution is ``Q = diag(u) exp(S / eps) diag(v)``; a few alternating normalisations of the
rows (prototypes) and columns (samples) of ``exp(S / eps)`` find ``u`` and ``v``. Returned scaled by
``B`` so that each sample's code sums to 1. The authors' defaults (``facebookresearch/swav``,
``main_swav.py``): ``eps = 0.05``, 3 iterations.

Under ``torch.distributed`` with ``distributed=True`` the sums over samples are global (all ranks'
batches together), as in the authors' ``distributed_sinkhorn``: each rank then gets its rows of the
codes of the whole global batch. The largest score is subtracted before ``exp`` (a global constant,
so it cancels in the first normalisation) to keep ``exp`` finite for small ``eps``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from ._precision import wide
from .distributed import all_sum, world


def _global_max(x: Tensor) -> Tensor:
    m = x.max().detach().clone()
    if world()[1] > 1:
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
    return m


@torch.no_grad()
def sinkhorn(
    scores: Tensor, epsilon: float = 0.05, iterations: int = 3, distributed: bool = True
) -> Tensor:
    """Soft equipartitioned codes of ``scores`` (B, K): each row sums to 1, each column to B / K
    (exactly after the last column step; the row sums approach 1 with the iterations).

    Parameters
    ----------
    scores : (B, K) similarities of (normalised) embeddings to (normalised) prototypes.
    epsilon : entropy weight; smaller gives harder codes (SwAV: 0.05).
    iterations : alternating normalisations (SwAV: 3).
    distributed : under ``torch.distributed``, normalise over every rank's samples.

    Examples
    --------
    >>> q = sinkhorn(torch.randn(8, 4))
    >>> torch.allclose(q.sum(dim=1), torch.ones(8))
    True
    """
    if scores.ndim != 2:
        raise ValueError(f"sinkhorn expects (B, K) scores, got shape {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 0:
        raise ValueError(
            f"sinkhorn needs epsilon > 0 and iterations >= 0, got {epsilon}, {iterations}"
        )
    s = wide(scores.detach())
    gsum = all_sum if distributed else (lambda t: t)
    m = _global_max(s) if distributed else s.max()
    q = torch.exp((s - m) / epsilon).t()  # (K, B)
    k = q.shape[0]
    b = q.shape[1] * (world()[1] if distributed else 1)
    q /= gsum(q.sum())
    for _ in range(iterations):
        q /= gsum(q.sum(dim=1, keepdim=True))  # each prototype gets 1 / K of the mass
        q /= k
        q /= q.sum(dim=0, keepdim=True)  # each sample gets 1 / B
        q /= b
    return (q * b).t().to(scores.dtype)
