"""A first-in first-out queue of embeddings (MoCo's negatives, NNCLR's support set).

The queue and its write pointer are buffers, so they are saved in checkpoints and restored exactly
on resume. Entries start as random unit vectors (as in MoCo) and are overwritten oldest first.

:func:`nearest_neighbour` is NNCLR's lookup (Dwibedi, Aytar, Tompson, Sermanet, Zisserman. *With a
Little Help from My Friends: Nearest-Neighbor Contrastive Learning of Visual Representations.*
ICCV 2021): ``NN(z, Q) = argmax_{q in Q} s(z, q)`` by cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeatureQueue(nn.Module):
    """FIFO of ``size`` embeddings of dimension ``dim``; ``push`` stores detached rows."""

    queue: Tensor
    ptr: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got {size} and {dim}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def push(self, x: Tensor) -> None:
        """Write the rows of ``x`` (N, dim) over the oldest entries."""
        x = x.detach().to(self.queue.dtype)
        n, k = x.shape[0], self.size
        if n >= k:
            self.queue.copy_(x[-k:])
            self.ptr.zero_()
            return
        idx = (self.ptr + torch.arange(n, device=x.device)) % k
        self.queue[idx] = x
        self.ptr.copy_((self.ptr + n) % k)


def nearest_neighbour(z: Tensor, support: Tensor) -> Tensor:
    """For each row of ``z`` (B, D), the row of ``support`` (K, D) with the highest cosine
    similarity (returned as stored; no gradient flows into ``support``)."""
    if z.ndim != 2 or support.ndim != 2 or z.shape[1] != support.shape[1]:
        raise ValueError(
            f"nearest_neighbour expects (B, D) and (K, D), got {tuple(z.shape)} and "
            f"{tuple(support.shape)}"
        )
    with torch.no_grad():
        idx = (F.normalize(z.detach(), dim=1) @ F.normalize(support, dim=1).t()).argmax(dim=1)
    return support.detach()[idx]
