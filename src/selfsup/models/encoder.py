"""The encoder a method trains and evaluation uses: input normalisation + backbone.

Keeping the input statistics inside the module means a saved encoder takes float images in
[0, 1] and needs no side information to be used correctly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Encoder(nn.Module):
    def __init__(self, backbone: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.backbone = backbone
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1))
        self.out_dim: int = backbone.out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone((x - self.mean) / self.std)
