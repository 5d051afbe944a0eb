"""SCARF's InfoNCE between rows and their corrupted copies.

Bahri, Jiang, Tay, Metzler. *SCARF: Self-Supervised Contrastive Learning using Random Feature
Corruption.* ICLR 2022 (Algorithm 1; the authors released no code, so this follows the paper).

For B anchors ``z_i`` (embeddings of the rows) and positives ``z~_i`` (of their corrupted views),
with ``s`` the cosine similarity and temperature ``t`` (1 in the paper)::

    L = (1 / B) sum_i -log( exp(s(z_i, z~_i) / t) / sum_k exp(s(z_i, z~_k) / t) )

The negatives of anchor ``i`` are the other rows' corrupted views (B - 1 of them); unlike NT-Xent
the loss is one-directional and no anchor is contrasted with another anchor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def scarf_loss(anchor: Tensor, positive: Tensor, temperature: float = 1.0) -> Tensor:
    """Mean InfoNCE of anchors (B, D) against their positives (B, D), as in the module docstring.

    Examples
    --------
    >>> scarf_loss(torch.randn(8, 16), torch.randn(8, 16)).shape
    torch.Size([])
    """
    if anchor.shape != positive.shape or anchor.ndim != 2:
        raise ValueError(
            f"scarf_loss needs two (B, D) batches of the same shape, got {tuple(anchor.shape)} "
            f"and {tuple(positive.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = F.normalize(anchor, dim=1) @ F.normalize(positive, dim=1).t() / temperature
    return F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))
