"""Projection and prediction heads."""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, last_bn: bool = False
) -> nn.Sequential:
    """``layers`` linear layers with BatchNorm and ReLU between them (SimCLR's projection head is
    ``mlp(d, 2048, 128, 2)``; BYOL's predictor ``mlp(256, 4096, 256, 2)``)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [
            nn.Linear(d, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
        ]
        d = hidden_dim
    mods.append(nn.Linear(d, out_dim, bias=not last_bn))
    if last_bn:
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)


def projection_head(
    in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, layers: int = 2
) -> nn.Sequential:
    """SimCLR's projection head: Linear-BN-ReLU-Linear."""
    return mlp(in_dim, hidden_dim, out_dim, layers)
