"""KoLeo: the Kozachenko-Leonenko differential entropy estimator as a spreading regulariser.

Sablayrolles, Douze, Schmid, Jegou, *Spreading vectors for similarity search*, ICLR 2019; used by
DINOv2 (Oquab et al. 2024, weight 0.1). For L2-normalised ``z_1 .. z_B`` and each sample's nearest
other sample in the batch:

    L = - 1/B sum_i log( ||z_i - z_{nn(i)}|| + eps ),   nn(i) = argmax_{j != i} z_i^T z_j

It grows as samples crowd together and so pushes the batch to spread over the sphere. The nearest
neighbour is chosen without gradient; the distance carries it (``facebookresearch/dinov2``,
``dinov2/loss/koleo_loss.py``: ``eps = 1e-8`` inside ``PairwiseDistance`` and in the log).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._precision import wide


def koleo(z: Tensor, eps: float = 1e-8) -> Tensor:
    """KoLeo loss of a batch of embeddings ``z`` (B, D), B >= 2 (normalised here)."""
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"koleo expects (B, D) embeddings with B >= 2, got {tuple(z.shape)}")
    z = F.normalize(wide(z), dim=1, eps=eps)
    with torch.no_grad():
        sim = z @ z.t()
        sim.fill_diagonal_(-1.0)  # never its own neighbour (the authors fill -1)
        nn_idx = sim.argmax(dim=1)
    d = F.pairwise_distance(z, z[nn_idx], p=2, eps=eps)
    return -(d + eps).log().mean()
