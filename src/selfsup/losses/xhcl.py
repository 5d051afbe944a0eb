"""Cross-modal hard negative sampling: HCL's reweighting applied across two modalities, both ways.

Choi, Beedu, Essa. *Multimodal Contrastive Learning with Hard Negative Sampling for Human Activity
Recognition.* arXiv:2309.01262, 2023 (skeleton + IMU pairs), which applies the hard-negative
objective of Robinson, Chuang, Sra, Jegelka, *Contrastive Learning with Hard Negative Samples*,
ICLR 2021 (authors' code: joshr17/HCL, ``image/main.py``, ``criterion``) to CMC-style cross-modal
pairs (Tian et al. 2020, *Contrastive Multiview Coding*; the HAR version: razzu/cmc-cmkm,
``models/cmc.py``, ``MM_NTXent``: an anchor of one modality against the other modality's
samples, both directions).

For B pairs ``(a_i, b_i)``, L2-normalised, the a -> b direction takes anchor ``a_i``, its positive
``b_i`` and its N = B - 1 negatives ``b_j`` (j != i), with ``s_ij = a_i . b_j``::

    pos  = exp(s_ii / t),   n_j = exp(s_ij / t)
    w_j  = exp(beta s_ij / t) / mean_k exp(beta s_ik / t)              (importance weights)
    Ng   = max( (-tau_plus N pos + sum_j w_j n_j) / (1 - tau_plus),  N exp(-1 / t) )
    L_i  = -log( pos / (pos + Ng) )

and b -> a the same with the roles swapped (anchor ``b_i`` against the ``a_j``). The loss is the
mean of the two directions' means. As in HCL's code the weights are not detached. Special cases:
``beta = 0, tau_plus = 0`` is the symmetric InfoNCE (CLIP's loss at the fixed scale ``1/t``);
collinear embeddings give ``log B``. The authors' own code was not found in the public index we
searched, so this follows the paper's description of applying HCL across modalities.

Both directions reduce to row log-sum-exps over the negatives (scales ``beta/t`` and
``(1 + beta)/t``), so they have the exact tiled path, and under torch.distributed the negatives
are the other modality's samples of every rank.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ._pairs import check_pair
from .distributed import gather, world
from .hcl import check_hcl, hcl, hcl_rows


def xhcl(
    a: Tensor,
    b: Tensor,
    temperature: float = 0.1,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    *,
    negatives: str = "cross",
    tiled: bool | None = None,
) -> Tensor:
    """Mean cross-modal hard-negative loss of B pairs ``(a_i, b_i)`` (two (B, D) tensors).

    ``negatives``: ``"cross"`` (the B - 1 other samples of the other modality, as CMC's cross-modal
    layout and the paper's description have it) or ``"all"`` (the 2B - 2 other samples of both
    modalities, HCL's own two-view layout: exactly :func:`selfsup.losses.hcl.hcl` of ``(a, b)``).

    Examples
    --------
    >>> xhcl(torch.randn(8, 16), torch.randn(8, 16), tau_plus=0.1, beta=1.0).shape
    torch.Size([])
    """
    check_pair("xhcl", a, b)
    check_hcl(temperature, tau_plus, beta)
    if negatives == "all":
        return hcl(a, b, temperature, tau_plus, beta, tiled=tiled)
    if negatives != "cross":
        raise ConfigError(f"negatives must be 'cross' or 'all', got {negatives!r}")
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    rank, _ = world()
    ka, kb = gather(a), gather(b)
    n = ka.shape[0] - 1
    exclude = (torch.arange(a.shape[0], device=a.device) + rank * a.shape[0])[:, None]
    a2b = hcl_rows(a, kb, b, exclude, n, temperature, tau_plus, beta, tiled)
    b2a = hcl_rows(b, ka, a, exclude, n, temperature, tau_plus, beta, tiled)
    return 0.5 * (a2b.mean() + b2a.mean())
