"""COLA's loss: in-batch classification of positives by a bilinear similarity.

Saeed, Grangier, Zeghidour, *Contrastive Learning of General-Purpose Audio Representations*,
ICASSP 2021. An anchor segment ``a_i`` and a positive segment ``p_i`` come from the same clip;
the other clips' positives in the batch are the negatives. With the bilinear similarity
``s(a, p) = a^T W p`` (``W`` learned), the loss is the cross-entropy of picking ``p_i`` among the
batch's positives::

    l = - 1/B sum_i log( exp(s(a_i, p_i)) / sum_j exp(s(a_i, p_j)) )

No temperature (W absorbs the scale). ``symmetric`` also classifies each anchor among the anchors
for a positive (``s(a_j, p_i)`` over j) and averages the two directions; COLA uses one direction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bilinear_loss(a: Tensor, p: Tensor, w: Tensor, symmetric: bool = False) -> Tensor:
    """COLA's loss of anchors ``a`` (B, D) and positives ``p`` (B, D) under ``W`` (D, D).

    Examples
    --------
    >>> import math, torch
    >>> a = torch.zeros(4, 3)  # every similarity is 0: the loss is log(B)
    >>> round(float(bilinear_loss(a, a, torch.eye(3))), 6) == round(math.log(4), 6)
    True
    """
    if a.ndim != 2 or a.shape != p.shape or w.shape != (a.shape[1], a.shape[1]):
        raise ValueError(
            f"bilinear_loss expects (B, D) anchors and positives and a (D, D) matrix, got "
            f"{tuple(a.shape)}, {tuple(p.shape)} and {tuple(w.shape)}"
        )
    logits = a @ w @ p.T  # (B, B): anchor i against positive j
    target = torch.arange(len(a), device=a.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss
