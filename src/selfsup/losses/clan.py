"""CLAN's loss: other benign samples as positives, augmented samples as negatives.

Wilkie, Hindy, Tachtatzis, Irvine, Atkinson. *Contrastive Self-Supervised Network Intrusion
Detection Using Augmented Negative Pairs* (CLAN), IEEE 2025. Authors' code: jackwilkie/CLAN,
``loss/clan_loss.py`` (``clan``, ``CLANLoss``), ``util/distance.py`` (``cosdist``) and the defaults
of ``train_clan.py`` at commit 680ab61 (last changed in b3542f2, "bug fix"): margin 0.5,
unsquared terms, alpha 0.5; ``CLANLoss`` passes eps 1e-6. (The script's previous commit, 818e6d4,
used margin 0.6 with squared terms: ``margin=0.6, squared=True``.)

With the cosine distance ``d(a, b) = (1 - cos(a, b)) / 2`` in [0, 1], a batch of B embeddings
``z`` of benign rows and M embeddings ``z'`` of augmented rows, and ``p = 1`` (``p = 2`` with
``squared=True``)::

    P_ij = d(z_i, z_j)^p                 i, j = 1..B          (every benign pair, positives)
    N_ij = max(0, m - d(z_i, z'_j))^p    i = 1..B, j = 1..M   (every augmented row, negatives)
    L = alpha * sum(P) / (#{P_ij > eps} + eps) + (1 - alpha) * sum(N) / (#{N_ij > eps} + eps)

Each term is the mean over its non-zero entries (the diagonal ``d(z_i, z_i) = 0`` drops out, and so
do negatives already beyond the margin).
The authors' anomaly score is ``-cos(z, mu)`` with ``mu`` the mean embedding of the benign training
rows (``eval_clan.py``); see :func:`centroid_score`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """``(1 - cos(a_i, b_j)) / 2`` for every pair: (len(a), len(b)), in [0, 1]."""
    return (1 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()) / 2


def clan_loss(
    z: Tensor,
    z_aug: Tensor,
    margin: float = 0.5,
    alpha: float = 0.5,
    squared: bool = False,
    eps: float = 1e-6,
) -> Tensor:
    """CLAN's loss of benign embeddings ``z`` (B, D) and augmented ones ``z_aug`` (M, D) (see the
    module docstring); the defaults are the authors' current ones. Returns a scalar.

    Examples
    --------
    >>> clan_loss(torch.randn(8, 4), torch.randn(8, 4)).shape
    torch.Size([])
    """
    if z.ndim != 2 or z_aug.ndim != 2 or z.shape[1] != z_aug.shape[1]:
        raise ValueError(
            f"clan_loss needs (B, D) and (M, D) embeddings, got {tuple(z.shape)} and "
            f"{tuple(z_aug.shape)}"
        )
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    pos = cosine_distance(z, z)
    neg = torch.relu(margin - cosine_distance(z, z_aug))
    if squared:
        pos, neg = pos**2, neg**2
    pos_term = pos.sum() / (
        (pos > eps).sum().to(pos.dtype) + eps
    )  # counts in the embeddings' dtype
    neg_term = neg.sum() / ((neg > eps).sum().to(neg.dtype) + eps)
    return alpha * pos_term + (1 - alpha) * neg_term


@torch.no_grad()
def centroid_score(bank: Tensor, query: Tensor) -> Tensor:
    """CLAN's anomaly score: ``-cos(q, mean(bank))`` (higher = more anomalous)."""
    mu = bank.float().mean(0, keepdim=True)
    return -F.cosine_similarity(query.float(), mu, dim=1)
