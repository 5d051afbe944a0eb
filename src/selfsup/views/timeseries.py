"""Batched series views made on the training device: float (N, C, T) in, ``n_views`` views out.

Every op works on the whole batch at once, in the data's own units (noise is scaled by each
channel's standard deviation in the training split), and keeps shape and dtype. NaN marks missing or
padded steps and stays NaN: the padded tail is never filled, ops that move values in time (slicing,
time warping, segment permutation) move each series' NaN with it and stay inside its valid length.
Random under torch's global generator, which the trainer keys by (seed, step) and checkpoints, so
views are reproducible under the seed.

The ops, applied in this order when enabled in a :class:`SeriesViewSpec`:

- window slicing (Le Guennec et al. 2016): a random window of ``slice`` of the valid length,
  stretched back to it by linear interpolation;
- time warping (Um et al. 2017): time runs at a smooth random speed (``time_warp`` = spread of the
  speed at ``knots`` knots, interpolated), the warped series resampled on the original steps;
- segment permutation (TS-TCC's strong view, Eldele et al., IJCAI 2021): the valid part cut at
  random points into 1 to ``permute`` segments, put back in a random order;
- magnitude warping (Um et al. 2017): multiplied by a smooth random curve around 1
  (``magnitude_warp``
  = its spread at the knots, interpolated between them), per channel;
- scaling (TS-TCC's weak view): each channel times a factor ~ N(1, ``scale``^2);
- jitter: Gaussian noise of ``jitter`` standard deviations;
- channel dropout: each channel replaced by its training mean with probability ``channel_dropout``
  (never every channel of a series).

TS2Vec's own augmentations (random overlapping crops and the timestamp mask) are part of its method
(``methods/ts2vec.py``) and encoder (``models/timeseries.py``), as in the paper.

Presets (``--set views.preset=NAME``; ``auto`` picks the method's preset for series, else
``default``):

- ``default``: window slicing (0.9) + magnitude warping (0.2) + scaling (0.1) + jitter (0.03) +
  channel dropout (0.1): moderate, and kind to short univariate series;
- ``weak`` (TS-TCC's weak view; ``jitter_scale`` is the same): scaling (0.1) + jitter (0.03);
- ``strong`` (TS-TCC's strong view): segment permutation (up to 5 segments) + jitter (0.1);
- ``warp``: time warping (0.2) + magnitude warping (0.2) + jitter (0.03);
- ``slice``: window slicing (0.8) + jitter (0.03);
- ``none``: the series unchanged (TS2Vec's views: its crops and mask are in the method/encoder).

The magnitudes are ours, in units of each channel's standard deviation (the papers tune them per
data set); ``views.series.*`` overrides any field of the chosen preset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn


@dataclass(frozen=True)
class SeriesViewSpec:
    slice: float = 1.0
    """Window slicing: the fraction of the valid length kept and stretched back (1: off)."""
    time_warp: float = 0.0
    """Time warping: spread of the random speed at the knots (0: off)."""
    permute: int = 0
    """Segment permutation: at most this many segments (0 or 1: off)."""
    magnitude_warp: float = 0.0
    """Magnitude warping: spread of the random multiplicative curve at the knots (0: off)."""
    knots: int = 4
    """Knots of the warping curves (time and magnitude)."""
    scale: float = 0.1
    """Per-sample, per-channel scaling factor ~ N(1, scale^2) (0: off)."""
    jitter: float = 0.03
    """Gaussian noise, in units of each channel's standard deviation (0: off)."""
    channel_dropout: float = 0.0
    """Probability that a channel is replaced by its training mean (0: off)."""


SERIES_PRESETS = {
    "default": SeriesViewSpec(slice=0.9, magnitude_warp=0.2, channel_dropout=0.1),
    "weak": SeriesViewSpec(),
    "jitter_scale": SeriesViewSpec(),
    "strong": SeriesViewSpec(permute=5, scale=0.0, jitter=0.1),
    "warp": SeriesViewSpec(time_warp=0.2, magnitude_warp=0.2, scale=0.0),
    "slice": SeriesViewSpec(slice=0.8, scale=0.0),
    "none": SeriesViewSpec(scale=0.0, jitter=0.0),
}


def spec_with(preset: SeriesViewSpec, overrides: dict | None) -> SeriesViewSpec:
    """``preset`` with the fields given in ``overrides`` (``views.series``) replaced."""
    return replace(preset, **{k: v for k, v in (overrides or {}).items() if v is not None})


class SeriesViews(nn.Module):
    """``n_views`` independently augmented copies of a series batch (N, C, T).

    ``std`` (C,) and ``mean`` (C,): each channel's training statistics (noise is relative to the
    data's own units; a dropped channel takes its mean).
    """

    def __init__(
        self,
        spec: SeriesViewSpec,
        std: list[float],
        n_views: int = 2,
        mean: list[float] | None = None,
    ):
        super().__init__()
        self.spec, self.n_views = spec, n_views
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1))
        self.register_buffer(
            "mean",
            torch.tensor(mean if mean is not None else [0.0] * len(std), dtype=torch.float32).view(
                1, -1, 1
            ),
        )

    def one(self, x: Tensor) -> Tensor:
        s = self.spec
        if s.slice < 1 or s.time_warp > 0 or s.permute > 1:
            n = valid_lengths(x)
            if s.slice < 1:
                x = window_slice(x, n, s.slice)
            if s.time_warp > 0:
                x = time_warp(x, n, s.time_warp, s.knots)
            if s.permute > 1:
                x = permute_segments(x, n, s.permute)
        if s.magnitude_warp > 0:
            x = magnitude_warp(x, s.magnitude_warp, s.knots)
        if s.scale:
            x = x * (1 + s.scale * torch.randn(x.shape[0], x.shape[1], 1, device=x.device))
        if s.jitter:
            x = x + s.jitter * self.std * torch.randn_like(x)
        if s.channel_dropout > 0:
            x = channel_dropout(x, s.channel_dropout, self.mean)
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x.float()
        return [self.one(x) for _ in range(self.n_views)]


# -- the ops (each: (N, C, T) float -> same shape and dtype; NaN kept) -----------------------------


def valid_lengths(x: Tensor) -> Tensor:
    """(N,) one past each series' last step where any channel is observed (at least 1)."""
    seen = ~torch.isnan(x).all(dim=1)  # (N, T)
    t = torch.arange(x.shape[-1], device=x.device)
    return (torch.where(seen, t, -1).amax(dim=1) + 1).clamp_min(1)


def resample(x: Tensor, pos: Tensor, n: Tensor) -> Tensor:
    """``x`` read at fractional positions ``pos`` (N, T) by linear interpolation; steps at or beyond
    each series' length ``n`` stay NaN. A step next to a missing value takes the nearer
    neighbour."""
    t = x.shape[-1]
    lo = pos.floor().clamp(0, t - 1).long()
    hi = (lo + 1).clamp(max=t - 1)
    hi = torch.minimum(hi, (n - 1).view(-1, 1))
    a = (pos - lo).clamp(0, 1).unsqueeze(1).to(x.dtype)
    c = x.shape[1]
    xl = x.gather(2, lo.unsqueeze(1).expand(-1, c, -1))
    xh = x.gather(2, hi.unsqueeze(1).expand(-1, c, -1))
    out = torch.where(
        torch.isnan(xl) | torch.isnan(xh), torch.where(a < 0.5, xl, xh), xl + a * (xh - xl)
    )
    pad = torch.arange(t, device=x.device).view(1, 1, -1) >= n.view(-1, 1, 1)
    return out.masked_fill(pad, float("nan"))


def window_slice(x: Tensor, n: Tensor, ratio: float) -> Tensor:
    """A random window of ``ratio`` of each series' valid length, stretched back to that length."""
    t = torch.arange(x.shape[-1], device=x.device, dtype=torch.float32).view(1, -1)
    nf = n.to(torch.float32).view(-1, 1)
    width = ((nf - 1) * ratio).clamp_min(0)
    start = torch.rand_like(nf) * (nf - 1 - width)
    pos = start + t * width / (nf - 1).clamp_min(1)
    return resample(x, pos, n)


def _smooth(noise: Tensor, t: int) -> Tensor:
    """Knot values (N, K, ...) -> a curve over ``t`` steps by linear interpolation (N, ..., t)."""
    return F.interpolate(noise, size=t, mode="linear", align_corners=True)


def time_warp(x: Tensor, n: Tensor, sigma: float, knots: int = 4) -> Tensor:
    """Time runs at a smooth random speed ~ 1 + N(0, sigma^2) (clamped positive) over each
    series."""
    t = x.shape[-1]
    speed = (1 + sigma * torch.randn(x.shape[0], 1, knots + 2, device=x.device)).clamp_min(0.1)
    cum = torch.cumsum(_smooth(speed, t).squeeze(1), dim=1)  # (N, T)
    nf = n.to(torch.float32).view(-1, 1)
    idx = torch.arange(t, device=x.device).view(1, -1)
    end = cum.gather(1, (n - 1).view(-1, 1))
    first = cum[:, :1]
    pos = (cum - first) / (end - first).clamp_min(1e-6) * (nf - 1)
    return resample(x, torch.where(idx < nf, pos, idx.to(pos.dtype)), n)


def permute_segments(x: Tensor, n: Tensor, max_segments: int) -> Tensor:
    """The valid part cut at random points into 1..max_segments segments, in a random order."""
    b, c, t = x.shape
    k = torch.randint(1, max_segments + 1, (b, 1), device=x.device)
    cuts = torch.rand(b, max_segments - 1, device=x.device) * n.view(-1, 1).to(torch.float32)
    cuts = torch.where(
        torch.arange(max_segments - 1, device=x.device).view(1, -1) < k - 1, cuts, float("inf")
    )
    idx = torch.arange(t, device=x.device).view(1, -1)
    seg = (idx.unsqueeze(-1).to(torch.float32) >= cuts.unsqueeze(1)).sum(
        -1
    )  # (B, T) segment of each step
    rank = torch.argsort(
        torch.rand(b, max_segments, device=x.device), dim=1
    )  # new place of each segment
    key = rank.gather(1, seg) * t + idx
    key = torch.where(idx < n.view(-1, 1), key, max_segments * t + idx)  # padding stays at the end
    order = torch.argsort(key, dim=1)
    return x.gather(2, order.unsqueeze(1).expand(-1, c, -1))


def magnitude_warp(x: Tensor, sigma: float, knots: int = 4) -> Tensor:
    """Each channel times a smooth random curve ~ 1 + N(0, sigma^2) at the knots."""
    curve = 1 + sigma * torch.randn(x.shape[0], x.shape[1], knots + 2, device=x.device)
    return x * _smooth(curve, x.shape[-1])


def channel_dropout(x: Tensor, p: float, mean: Tensor) -> Tensor:
    """Each channel replaced by its mean with probability ``p``; never all channels of a series."""
    b, c, _ = x.shape
    if c < 2:
        return x
    drop = torch.rand(b, c, device=x.device) < p
    keep_one = torch.randint(0, c, (b,), device=x.device)
    drop[torch.arange(b, device=x.device), keep_one] = False
    filled = torch.where(torch.isnan(x), x, mean.to(x.dtype).expand_as(x))
    return torch.where(drop.unsqueeze(-1), filled, x)


class SeriesViewsConfig(BaseModel):
    """Series views: a field set here replaces the chosen preset's (see
    :mod:`selfsup.views.timeseries`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    slice: float | None = Field(default=None, gt=0, le=1)
    """Window slicing: fraction of the valid length kept and stretched back (1: off)."""
    time_warp: float | None = Field(default=None, ge=0, le=2)
    """Time warping: spread of the random speed at the knots (0: off)."""
    permute: int | None = Field(default=None, ge=0, le=64)
    """Segment permutation: at most this many segments (0 or 1: off)."""
    magnitude_warp: float | None = Field(default=None, ge=0, le=2)
    """Magnitude warping: spread of the random multiplicative curve at the knots (0: off)."""
    knots: int | None = Field(default=None, ge=1, le=64)
    """Knots of the time and magnitude warping curves."""
    scale: float | None = Field(default=None, ge=0, le=2)
    """Per-sample, per-channel scaling factor ~ N(1, scale^2) (0: off)."""
    jitter: float | None = Field(default=None, ge=0, le=10)
    """Gaussian noise in units of each channel's standard deviation."""
    channel_dropout: float | None = Field(default=None, ge=0, lt=1)
    """Probability that a channel is replaced by its training mean (never all channels)."""
