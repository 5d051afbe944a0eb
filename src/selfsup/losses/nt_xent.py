"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi, Hinton. *A Simple Framework for Contrastive Learning of Visual
Representations.* ICML 2020.

For 2B embeddings (two views of B samples), L2-normalised, anchor ``i`` with positive ``p(i)``::

    L_i = -log( exp(s(z_i, z_p(i)) / t) / sum_{k != i} exp(s(z_i, z_k) / t) )

averaged over all 2B anchors (symmetric in the two views). The positive stays in the denominator,
which holds the other 2B - 1 embeddings. When all embeddings are collinear every term equals
``log(2B - 1)``.

Large batches use the exact tiled path of :mod:`selfsup.losses.tiled`; under torch.distributed the
negatives are the embeddings of every rank (:mod:`selfsup.losses.distributed`).
"""

from __future__ import annotations

from torch import Tensor

from ._pairs import check_pair, check_positive, pair_layout
from .tiled import row_lse


def nt_xent(
    z1: Tensor, z2: Tensor, temperature: float = 0.5, *, tiled: bool | None = None
) -> Tensor:
    """Mean NT-Xent loss of two batches of paired embeddings.

    Parameters
    ----------
    z1, z2 : Tensor of shape (B, D)
        Embeddings of the two views; row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive
        pair. They are L2-normalised here.
    temperature : float
        Softmax temperature ``t`` (> 0). lightly's default is 0.5; SimCLR used 0.1 on ImageNet.
    tiled : bool or None
        Force the tiled (True) or dense (False) computation; None chooses by size. Both are exact.

    Returns
    -------
    Tensor
        Scalar, the loss averaged over the 2B anchors.

    Examples
    --------
    >>> import torch
    >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> nt_xent(z1, z2, temperature=0.5).shape
    torch.Size([])
    """
    check_pair("nt_xent", z1, z2)
    check_positive(temperature=temperature)
    p = pair_layout(z1, z2)
    lse = row_lse(p.q, p.k, 1.0 / temperature, p.self_idx[:, None], tiled)
    pos = (p.q * p.qpos).sum(1) / temperature
    return (lse - pos).mean()
