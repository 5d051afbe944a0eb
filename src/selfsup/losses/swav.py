"""SwAV's swapped prediction loss over multi-crop views.

Caron et al., *Unsupervised Learning of Visual Features by Contrasting Cluster Assignments*,
NeurIPS 2020. Each view ``v`` of a sample has scores ``s_v = z_v^T C`` against K normalised
prototypes; the codes ``q_i`` of each *assigned* view i (the global crops) come from
:func:`~selfsup.losses.sinkhorn.sinkhorn` (no gradient, optionally on the batch preceded by a
queue of past embeddings whose codes are dropped), and every other view predicts them:

    L = 1 / |A| sum_{i in A} 1 / (V - 1) sum_{v != i}
            mean_b [ - sum_k q_ibk log softmax(s_vb / t)_k ]

Defaults of the authors' ``main_swav.py``: ``t = 0.1``, ``eps = 0.05``, 3 Sinkhorn iterations,
assignments from the two global crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .sinkhorn import sinkhorn


def swapped_prediction(scores: Tensor, codes: Tensor, temperature: float) -> Tensor:
    """``mean_b - sum_k codes_bk log softmax(scores_b / t)_k``: cross-entropy with soft targets."""
    return -(codes * F.log_softmax(scores / temperature, dim=1)).sum(dim=1).mean()


def swav_loss(
    scores: list[Tensor],
    n_assign: int = 2,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    iterations: int = 3,
    queue_scores: list[Tensor | None] | None = None,
    distributed: bool = True,
    codes_out: list[Tensor] | None = None,
) -> Tensor:
    """SwAV loss of per-view prototype scores.

    Parameters
    ----------
    scores : one (B, K) tensor per view, ``z_v^T C`` for L2-normalised ``z`` and prototypes ``C``;
        the first ``n_assign`` views are the ones whose codes are computed (global crops).
    queue_scores : per assigned view, scores (Q, K) of queued past embeddings of that view, or None;
        they enter Sinkhorn ahead of the batch, and their codes are dropped.
    distributed : Sinkhorn's sums over every rank's samples under ``torch.distributed``.
    codes_out : when given, the codes of each assigned view (B, K) are appended to it, in order
        (the targets, for a caller that monitors them without running Sinkhorn again).
    """
    v = len(scores)
    if v < 2 or not 1 <= n_assign <= v:
        raise ValueError(
            f"swav_loss needs >= 2 views and 1 <= n_assign <= views, got {v}, {n_assign}"
        )
    total = scores[0].new_zeros(())
    for i in range(n_assign):
        s = scores[i].detach()
        qs = queue_scores[i] if queue_scores is not None else None
        if qs is not None:
            s = torch.cat([qs.detach().to(s.dtype), s])
        q = sinkhorn(s, epsilon, iterations, distributed)[-len(scores[i]) :]
        if codes_out is not None:
            codes_out.append(q)
        sub = sum(swapped_prediction(scores[j], q, temperature) for j in range(v) if j != i)
        total = total + sub / (v - 1)
    return total / n_assign
