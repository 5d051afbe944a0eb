"""GraphMAE's scaled cosine error (SCE) between original and reconstructed node features.

Hou, Liu, Cen, Dong, Yang, Wang, Tang. *GraphMAE: Self-Supervised Masked Graph Autoencoders.*
KDD 2022 (Eq. 4); authors' code: THUDM/GraphMAE, ``graphmae/models/loss_func.py`` (``sce_loss``).

For the masked nodes ``V~``, original features ``x_i`` and reconstructions ``z_i``, with the scaling
exponent ``gamma >= 1`` (``alpha_l`` in the code; 3 on Cora)::

    L = (1 / |V~|) sum_{i in V~} (1 - x_i . z_i / (||x_i|| ||z_i||)) ** gamma

``gamma = 1`` is the plain cosine error; a larger exponent down-weights the easy (already
well-reconstructed) nodes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def sce_loss(x: Tensor, z: Tensor, gamma: float = 3.0) -> Tensor:
    """Mean scaled cosine error of reconstructions ``z`` (M, F) against targets ``x`` (M, F).

    Examples
    --------
    >>> import torch
    >>> round(float(sce_loss(torch.ones(4, 3), torch.ones(4, 3))), 6)
    0.0
    """
    if x.shape != z.shape or x.ndim != 2:
        raise ValueError(
            f"sce_loss needs two (M, F) arrays of the same shape, got {tuple(x.shape)} and "
            f"{tuple(z.shape)}"
        )
    if not gamma >= 1:
        raise ValueError(f"the scaling exponent gamma must be >= 1, got {gamma}")
    # the dot product over the norms (as F.normalize, each norm at least 1e-12): two fewer
    # (M, F)-sized passes than normalising z first, forward and backward
    x = F.normalize(x, dim=-1)
    cos: Tensor = (x * z).sum(-1) / z.norm(dim=-1).clamp(min=1e-12)
    return (1 - cos).pow(gamma).mean()
