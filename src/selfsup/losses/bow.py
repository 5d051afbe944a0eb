"""OBoW's bag-of-visual-words targets and its prediction loss.

Gidaris, Bursuc, Puy, Komodakis, Cord, Perez, *OBoW: Online Bag-of-Visual-Words Generation for
Self-Supervised Learning*, CVPR 2021 (``valeoai/obow``, ``obow/builder_obow.py``). The teacher's
local features ``f_l`` (the cells of its last feature map) are softly assigned to a vocabulary of
K visual words ``w_k`` (a queue of past teacher features):

    d_lk = ||f_l - w_k||^2,     a_lk = softmax_k( - delta^-1 d_lk / mu ),     y_k = max_l a_lk
    BoW = y / ||y||_1

with ``mu`` a running mean (decay 0.99) of ``min_k d_lk`` (so the inverse temperature adapts to the
distances' scale) and ``delta^-1`` the base inverse temperature (15 by default; 10 in the authors'
ImageNet configs). The student predicts the BoW from a perturbed view's global feature ``z`` with
logits ``kappa z^T W``, ``W`` generated from the words by a small network, and the loss is the KL
divergence (the authors' ``F.kl_div(..., reduction="batchmean")``):

    L = 1/B sum_b sum_k BoW_bk ( log BoW_bk - log softmax(logits_b)_k )
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._precision import wide


@torch.no_grad()
def word_distances(features: Tensor, words: Tensor) -> Tensor:
    """Squared distances (B, L, K) of local features (B, L, C) to the words (K, C)."""
    f = wide(features)
    w = wide(words).to(f.dtype)
    return (f.pow(2).sum(-1, keepdim=True) + w.pow(2).sum(-1) - 2 * f @ w.t()).clamp_min(0)


@torch.no_grad()
def bow_targets(dist: Tensor, inv_delta: float, mu_min_dist: float | Tensor) -> Tensor:
    """L1-normalised BoW (B, K) of the distances (B, L, K): soft assignment with inverse temperature
    ``inv_delta / mu_min_dist``, then max-pooled over the L local features."""
    codes = F.softmax(-(inv_delta / mu_min_dist) * dist, dim=-1)
    return F.normalize(codes.amax(dim=1), p=1, dim=1)


def bow_loss(logits: Tensor, target: Tensor) -> Tensor:
    """``KL(target || softmax(logits))`` averaged over the batch; ``0 log 0 = 0``."""
    logp = F.log_softmax(wide(logits), dim=1)
    t = target.detach().to(logp.dtype)
    return (torch.xlogy(t, t) - t * logp).sum(dim=1).mean()
