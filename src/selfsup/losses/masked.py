"""Reconstruction losses of masked image modelling (MAE, SparK, CMAE).

He et al., *Masked Autoencoders Are Scalable Vision Learners*, CVPR 2022, section 3 ("Reconstruction
target"): the loss is the mean squared error between the predicted and the original pixels,
computed on masked patches only; with ``norm_pix`` each target patch is first normalised by its own
mean and standard deviation. The authors' ``facebookresearch/mae``, ``models_mae.py``,
``forward_loss`` (read to check this): the variance is the unbiased one and the normaliser is
``sqrt(var + 1e-6)``::

    t_l = (x_l - mean(x_l)) / sqrt(var(x_l) + 1e-6)        (norm_pix; else t_l = x_l)
    loss = sum_l m_l * mean_j (p_lj - t_lj)^2 / sum_l m_l     (m_l = 1 for a masked patch)

Tian et al., *Designing BERT for Convolutional Networks: Sparse and Hierarchical Masked Modeling*
(SparK), ICLR 2023 use the same normalised-pixel loss on masked patches (``keyu-tian/SparK``,
``pretrain/spark.py``, ``forward``), so :func:`masked_pixel_loss` serves both.
"""

from __future__ import annotations

import torch
from torch import Tensor


def normalize_patches(target: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-patch normalisation of (N, L, P) pixels: ``(x - mean) / sqrt(var_unbiased + eps)``."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps).sqrt()


def masked_pixel_loss(
    pred: Tensor, target: Tensor, mask: Tensor, norm_pix: bool = True, eps: float = 1e-6
) -> Tensor:
    """Mean squared error on masked patches.

    Parameters
    ----------
    pred, target : (N, L, P) predicted and original pixels of each of the L patches.
    mask : (N, L), 1 for a masked patch (counted), 0 for a visible one (ignored).
    norm_pix : normalise each target patch by its own mean and standard deviation first.

    Returns the scalar ``sum_l m_l mse_l / sum_l m_l``.

    Examples
    --------
    >>> p = torch.zeros(2, 4, 12); t = torch.ones(2, 4, 12); m = torch.tensor([[1., 0, 0, 1]] * 2)
    >>> float(masked_pixel_loss(p, t, m, norm_pix=False))
    1.0
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"masked_pixel_loss expects pred/target (N, L, P) and mask (N, L), got "
            f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(mask.shape)}"
        )
    if norm_pix:
        target = normalize_patches(target, eps)
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1)


def masked_token_agreement(z1: Tensor, z2: Tensor, both: Tensor) -> Tensor:
    """Cosine agreement of two views' token features at positions masked in both (Point-CMAE).

    ``z1``, ``z2`` (N, L, D) per-position features; ``both`` (N, L) 1 where the position is masked
    in both views. Returns ``1 - mean cos(z1_l, z2_l)`` over those positions (the constant 1,
    without gradient, if there are none).
    """
    cos = torch.nn.functional.cosine_similarity(z1, z2, dim=-1)
    return 1 - (cos * both).sum() / both.sum().clamp_min(1)
