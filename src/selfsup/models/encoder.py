"""The encoder a method trains and evaluation uses: input normalisation + backbone.

Keeping the input statistics inside the module means a saved encoder takes raw-scale inputs (images:
float in [0, 1]; series: the source's own units) and needs no side information to be used correctly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Encoder(nn.Module):
    """``backbone((x - mean) / std)``. ``mean``/``std``: tensors shaped to broadcast over a batch
    (images (1, C, 1, 1), series (1, C, 1), tables (1, F)), or per-channel lists (image layout)."""

    def __init__(self, backbone: nn.Module, mean: list[float] | Tensor, std: list[float] | Tensor):
        super().__init__()
        self.backbone = backbone
        if not isinstance(mean, Tensor):
            c = len(mean)
            mean = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
            std = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", torch.as_tensor(std).float().clone())
        self.out_dim: int = backbone.out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone((x - self.mean) / self.std)
