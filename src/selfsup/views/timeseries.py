"""Batched series views made on the training device: float (N, C, T) in, ``n_views`` views out.

NaN marks missing or padded steps and stays NaN through every view (the encoder masks it).
Random under torch's global generator, which the trainer seeds and checkpoints.

Presets (``--set views.preset=NAME``):

- ``jitter_scale`` (TS-TCC's weak view, Eldele et al. 2021): per-channel scaling by N(1, 0.1^2)
  and Gaussian jitter of 0.03 standard deviations of the (standardised) series.
- ``none``: the series unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class SeriesViewSpec:
    jitter: float = 0.03
    """Gaussian noise, in units of each channel's standard deviation."""
    scale: float = 0.1
    """Per-sample, per-channel scaling factor ~ N(1, scale^2)."""


SERIES_PRESETS = {
    "jitter_scale": SeriesViewSpec(),
    "none": SeriesViewSpec(jitter=0.0, scale=0.0),
}


class SeriesViews(nn.Module):
    """``n_views`` independently augmented copies of a series batch (N, C, T).

    ``std`` (C,) gives each channel's scale, so noise is relative to the data's own units.
    """

    def __init__(self, spec: SeriesViewSpec, std: list[float], n_views: int = 2):
        super().__init__()
        self.spec, self.n_views = spec, n_views
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1))

    def one(self, x: Tensor) -> Tensor:
        s = self.spec
        if s.scale:
            x = x * (1 + s.scale * torch.randn(x.shape[0], x.shape[1], 1, device=x.device))
        if s.jitter:
            x = x + s.jitter * self.std * torch.randn_like(x)
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x.float()
        return [self.one(x) for _ in range(self.n_views)]
