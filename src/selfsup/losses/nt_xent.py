"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi, Hinton. *A Simple Framework for Contrastive Learning of Visual
Representations.* ICML 2020.

For 2B embeddings (two views of B samples), L2-normalised, anchor ``i`` with positive ``p(i)``::

    L_i = -log( exp(s(z_i, z_p(i)) / t) / sum_{k != i} exp(s(z_i, z_k) / t) )

averaged over all 2B anchors (symmetric in the two views). The positive stays in the denominator,
which holds the other 2B - 1 embeddings. When all embeddings are collinear every term equals
``log(2B - 1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """Mean NT-Xent loss of two batches of paired embeddings.

    Parameters
    ----------
    z1, z2 : Tensor of shape (B, D)
        Embeddings of the two views; row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair.
        They are L2-normalised here.
    temperature : float
        Softmax temperature ``t`` (> 0). lightly's default is 0.5; SimCLR used 0.1 on ImageNet.

    Returns
    -------
    Tensor
        Scalar, the loss averaged over the 2B anchors.

    Examples
    --------
    >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> nt_xent(z1, z2, temperature=0.5).shape
    torch.Size([])
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent expects two (B, D) tensors of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    logits = z @ z.t() / temperature
    logits.fill_diagonal_(float("-inf"))
    idx = torch.arange(2 * b, device=z.device)
    target = torch.cat([idx[b:], idx[:b]])
    return F.cross_entropy(logits, target)
