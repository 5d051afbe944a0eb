"""The SimCSE loss: in-batch InfoNCE from each first-view embedding to every second-view one.

Gao, Yao, Chen, *SimCSE: Simple Contrastive Learning of Sentence Embeddings*, EMNLP 2021. For B
sentences encoded twice (two dropout masks), ``h_i`` and ``h_i^+``::

    L = -1/B sum_i log( exp(cos(h_i, h_i^+) / t) / sum_j exp(cos(h_i, h_j^+) / t) )

one direction only (the anchors are the first view's rows; the denominator holds the B second-view
embeddings, the positive among them), as in the authors' ``simcse/models.py`` (``cl_forward``:
``cos_sim(z1, z2) / temp`` then cross-entropy with labels ``arange(B)``). Temperature 0.05.
Unlike NT-Xent, the first view's other rows are not negatives.

Example
-------
>>> import torch
>>> z = torch.eye(3)
>>> round(float(simcse_loss(z, z, 1.0)), 4)  # -log(e / (e + 2))
0.5514
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def simcse_loss(z1: Tensor, z2: Tensor, temperature: float = 0.05) -> Tensor:
    """Mean SimCSE loss of (B, D) paired embeddings ``z1`` (anchors) and ``z2`` (candidates)."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"z1 and z2 must be (B, D) of one shape, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    if z1.dtype in (torch.float16, torch.bfloat16):
        z1, z2 = z1.float(), z2.float()
    sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    labels = torch.arange(len(z1), device=z1.device)
    return F.cross_entropy(sim, labels)
