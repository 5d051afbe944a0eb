"""Shared layout of a two-view batch for the InfoNCE family (local anchors, global keys)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .distributed import gather, world


@dataclass
class PairLayout:
    q: Tensor  # (2B, D) local anchors: view 1 rows then view 2 rows, L2-normalised
    k: Tensor  # (2RB, D) keys of every rank: all view-1 rows, then all view-2 rows
    qpos: Tensor  # (2B, D) each anchor's positive (the other view of the same sample)
    self_idx: Tensor  # (2B,) index in k of the anchor itself
    pos_idx: Tensor  # (2B,) index in k of the anchor's positive
    n_keys: int


def check_pair(name: str, z1: Tensor, z2: Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ConfigError(
            f"{name} expects two (B, D) tensors of equal shape, got {tuple(z1.shape)} "
            f"and {tuple(z2.shape)}; pass the two views' embeddings"
        )
    if z1.shape[0] < 2:
        raise ConfigError(
            f"{name} needs a batch of at least 2 samples (got {z1.shape[0]}); "
            "use a larger batch size"
        )


def check_positive(**values: float) -> None:
    for k, v in values.items():
        if not float(v) > 0:
            raise ConfigError(f"{k} must be > 0, got {v}")


def pair_layout(z1: Tensor, z2: Tensor) -> PairLayout:
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    rank, size = world()
    b = z1.shape[0]
    k = torch.cat([gather(z1), gather(z2)])
    i = torch.arange(b, device=z1.device) + rank * b
    self_idx = torch.cat([i, i + size * b])
    pos_idx = torch.cat([i + size * b, i])
    return PairLayout(torch.cat([z1, z2]), k, torch.cat([z2, z1]), self_idx, pos_idx, k.shape[0])
