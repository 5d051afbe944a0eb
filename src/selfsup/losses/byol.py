"""Regression losses of the predictor methods (BYOL, SimSiam, DirectPred, MoCo-free siamese nets).

Grill et al. *Bootstrap Your Own Latent.* NeurIPS 2020: with ``s(a, b)`` the cosine similarity,
the loss of a prediction ``p`` against a target ``z`` is the squared distance of the normalised
vectors::

    l(p, z) = || p/|p| - z/|z| ||^2 = 2 - 2 s(p, z)

Chen & He. *Exploring Simple Siamese Representation Learning.* CVPR 2021 use ``-s(p, z)``.

Both are means over the batch. The stop-gradient on the target is the caller's decision (pass
``z.detach()``): a pure function does not hide it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _check(p: Tensor, z: Tensor, name: str) -> None:
    if p.ndim != 2 or p.shape != z.shape:
        raise ValueError(
            f"{name} expects two (B, D) tensors of equal shape, got {tuple(p.shape)} and "
            f"{tuple(z.shape)}"
        )


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """Mean of ``2 - 2 s(p_i, z_i)`` over the batch (0 when aligned, 4 when opposite).

    Examples
    --------
    >>> import torch
    >>> round(float(byol_loss(torch.ones(2, 3), torch.ones(2, 3))), 6)
    0.0
    """
    _check(p, z, "byol_loss")
    return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """Mean of ``-s(p_i, z_i)`` over the batch (SimSiam's ``D(p, z)``)."""
    _check(p, z, "negative_cosine")
    return -F.cosine_similarity(p, z, dim=1).mean()
