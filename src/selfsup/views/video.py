"""Batched clip views made on the training device (CVRL's): uint8 (N, T, H, W, C) videos in, float
(N, C, clip_frames, size, size) clips in [0, 1] out.

Qian et al., *Spatiotemporal Contrastive Video Representation Learning*, CVPR 2021 (CVRL):

- **Temporal interval sampling.** The views of one video are clips taken at different times. The
  gap ``t`` between their starts is drawn with a probability that decreases linearly with ``t``,
  ``P(t) ∝ D + 1 - t`` for ``t = 0..D``, where ``D`` is the largest gap the video allows (its
  length minus the clip's span): nearby clips are likelier, clips far apart still occur (CVRL's
  ``P(t) ∝ -t + c`` with ``c`` the video's length). The first clip starts uniformly where both
  fit; which of the two comes first is random. With ``interval="uniform"`` the starts are
  independent and uniform; with ``"same"`` both views share one clip (only the spatial augmentation
  differs).
- **Frame-rate jitter.** Each clip reads every ``s``-th frame, ``s`` drawn uniformly in ``stride``
  (clamped so that ``clip_frames`` frames fit in the video).
- **Temporally consistent spatial augmentation.** One random resized crop (area ``crop_scale``,
  aspect 3/4-4/3), one horizontal flip, one colour jitter (brightness, contrast, saturation, hue,
  applied with probability ``jitter_p``) and one grayscale draw per *clip*, the same for every
  frame, so the motion inside a clip is not corrupted by frame-to-frame jitter (CVRL, section 3.2).

Evaluation (:func:`eval_clip`) takes ``clip_frames`` frames evenly spread over the whole video at
full size: deterministic, and covering the video.

:func:`tube_mask` is VideoMAE's tube masking (Tong et al., NeurIPS 2022): one random spatial mask a
clip, the same at every time step (a masked patch is masked in every frame, so it cannot be copied
from the neighbouring frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ..models.video import tube_mask  # noqa: F401 (re-exported)


class VideoViewsConfig(BaseModel):
    """``views.video``: the clip views' parameters (``--set views.video.clip_frames=16``)."""

    model_config = ConfigDict(extra="forbid")

    clip_frames: int = Field(default=8, ge=1, le=256)
    """Frames per view and per evaluation clip (at most the stored frames)."""
    stride: tuple[int, int] = (1, 2)
    """Frame-rate jitter: each clip reads every s-th frame, s ~ U{lo..hi} (clamped to fit)."""
    interval: str = Field(default="cvrl", pattern="^(cvrl|uniform|same)$")
    """How the two clips of a video are placed: ``cvrl`` (gaps with linearly decreasing
    probability), ``uniform`` (independent starts) or ``same`` (one clip for both views)."""
    size: int | None = Field(default=None, ge=4, le=1024)
    """Side of the views (default: the stored frames' side)."""
    crop_scale: tuple[float, float] = (0.3, 1.0)
    """Area fraction of the random resized crop (CVRL: 0.3-1)."""
    flip: float = Field(default=0.5, ge=0, le=1)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    """Brightness, contrast, saturation, hue strengths (SimCLR's/CVRL's, strength 0.5
    of 0.8/0.2)."""
    jitter_p: float = Field(default=0.8, ge=0, le=1)
    grayscale_p: float = Field(default=0.2, ge=0, le=1)
    still_p: float = Field(default=0.0, ge=0, le=1)
    """Probability that a view is a still clip: one of its frames (drawn uniformly) repeated over
    time, so that matching it to the other view takes the appearance, not the motion (off by
    default; measured on moving digits in BENCHMARKS.md, issue 22)."""


# -- temporal sampling -----------------------------------------------------------------------------
def interval_probs(max_gap: int) -> Tensor:
    """CVRL's gap distribution on ``0..max_gap``: ``P(t) ∝ max_gap + 1 - t`` (float64)."""
    t = torch.arange(max_gap + 1, dtype=torch.float64)
    w = max_gap + 1 - t
    return w / w.sum()


def sample_gaps(max_gap: Tensor) -> Tensor:
    """One gap per clip pair, ``P(t) ∝ D + 1 - t`` on ``0..D`` with ``D = max_gap[i]``
    (long, >= 0).

    Inverse CDF of the discrete triangle: ``F(t) = (t + 1)(2D + 2 - t) / ((D + 1)(D + 2))``."""
    d = max_gap.to(torch.float64).clamp_min(0)
    u = torch.rand(d.shape, dtype=torch.float64, device=max_gap.device)
    # smallest t with F(t) >= u: solve (t + 1)(2D + 2 - t) = u (D + 1)(D + 2) for t
    a = 2 * d + 3
    disc = (a * a - 4 * u * (d + 1) * (d + 2)).clamp_min(0)
    t = torch.ceil((a - disc.sqrt()) / 2 - 1 - 1e-9).clamp_min(0)
    t = torch.minimum(t, d)

    def cdf(k):
        return (k + 1) * (2 * d + 2 - k) / ((d + 1) * (d + 2))

    # one correction step against rounding at the boundaries
    t = torch.where((t > 0) & (cdf(t - 1) >= u), t - 1, t)
    t = torch.where((t < d) & (cdf(t) < u), t + 1, t)
    return t.long()


def clip_indices(
    n: int, frames: int, clip: int, stride: tuple[int, int], interval: str, device
) -> tuple[Tensor, Tensor]:
    """Frame indices (n, clip) of two clips per video under CVRL's sampling (see module doc)."""
    clip = min(clip, frames)
    s_hi = max(1, min(stride[1], (frames - 1) // max(1, clip - 1))) if clip > 1 else 1
    s_lo = max(1, min(stride[0], s_hi))
    s = torch.randint(s_lo, s_hi + 1, (2, n), device=device)
    span = (clip - 1) * s + 1  # (2, n)
    ar = torch.arange(clip, device=device)
    if interval == "same":
        start = (torch.rand(n, device=device) * (frames - span[0] + 1)).floor().long()
        idx = start[:, None] + ar[None] * s[0][:, None]
        return idx, idx
    if interval == "uniform":
        st = (torch.rand(2, n, device=device) * (frames - span + 1)).floor().long()
        return tuple(  # type: ignore[return-value]
            st[k][:, None] + ar[None] * s[k][:, None] for k in range(2)
        )
    room = frames - span.amax(0)  # (n,) the largest gap with both clips inside
    gap = sample_gaps(room)
    first = (torch.rand(n, device=device) * (room - gap + 1)).floor().long()
    swap = torch.rand(n, device=device) < 0.5
    a, b = torch.where(swap, first + gap, first), torch.where(swap, first, first + gap)
    return a[:, None] + ar[None] * s[0][:, None], b[:, None] + ar[None] * s[1][:, None]


def take_frames(x: Tensor, idx: Tensor) -> Tensor:
    """Frames ``idx`` (N, k) of uint8 videos (N, T, H, W, C) -> float (N, C, k, H, W) in [0, 1]."""
    n, _, h, w, c = x.shape
    g = x.gather(1, idx.view(n, -1, 1, 1, 1).expand(-1, -1, h, w, c))
    return g.permute(0, 4, 1, 2, 3).float().div_(255.0)


# -- spatial augmentation, one draw a clip ---------------------------------------------------------
def _gray(x: Tensor) -> Tensor:
    """(N, C, T, H, W) -> (N, 1, T, H, W) luma (C = 1: itself)."""
    if x.shape[1] == 1:
        return x
    wts = torch.tensor((0.299, 0.587, 0.114), device=x.device, dtype=x.dtype)
    return torch.einsum("nctHW,c->ntHW", x, wts).unsqueeze(1)


def consistent_augment(x: Tensor, spec: VideoViewsConfig, size: int) -> Tensor:
    """One random view of float clips (N, C, T, H, W) in [0, 1] -> (N, C, T, size, size): every
    frame of a clip gets the same crop, flip, colour jitter and grayscale."""
    from .image import _affine_grid, _hue, crop_params

    n, c, t, h, w = x.shape
    dev = x.device
    cw, ch, cx, cy = crop_params(n, spec.crop_scale, (3 / 4, 4 / 3), dev)
    sx = torch.where(torch.rand(n, device=dev) < spec.flip, -cw, cw)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = sx, ch
    theta[:, 0, 2], theta[:, 1, 2] = 2 * cx - 1, 2 * cy - 1
    grid = _affine_grid(theta, size)  # (n, size, size, 2): one grid a clip, every frame
    frames = x.reshape(n, c * t, h, w)  # the time steps ride along as channels
    v = F.grid_sample(frames, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    v = v.view(n, c, t, size, size)
    b, co, sa, hu = spec.jitter
    if c == 1:
        sa, hu = 0.0, 0.0
    if spec.jitter_p > 0 and any(j > 0 for j in (b, co, sa, hu)):
        on = (torch.rand(n, device=dev) < spec.jitter_p).float()
        ops = [i for i, j in enumerate((b, co, sa, hu)) if j > 0]
        for i in torch.randperm(len(ops)).tolist():
            op = ops[i]
            if op == 3:
                shift = (torch.rand(n, device=dev) * 2 - 1) * hu * on
                v = _hue(
                    v.transpose(1, 2).reshape(n * t, c, size, size), shift.repeat_interleave(t)
                )
                v = v.view(n, t, c, size, size).transpose(1, 2)
            else:
                j = (b, co, sa)[op]
                f = (1 + (torch.rand(n, device=dev) * 2 - 1) * j * on).view(n, 1, 1, 1, 1)
                if op == 0:
                    v = v * f
                elif op == 1:  # around the clip's mean luma (one mean for every frame)
                    m = _gray(v).mean(dim=(1, 2, 3, 4), keepdim=True)
                    v = (v - m) * f + m
                else:
                    g = _gray(v)
                    v = (v - g) * f + g
            v = v.clamp(0, 1)
    if spec.grayscale_p > 0 and c == 3:
        gmask = (torch.rand(n, device=dev) < spec.grayscale_p).view(n, 1, 1, 1, 1)
        v = torch.where(gmask, _gray(v).expand_as(v), v)
    return v.clamp_(0, 1)


def still_clips(v: Tensor, p: float) -> Tensor:
    """Clips (N, C, T, H, W) of which each, with probability ``p``, is replaced by one of its own
    frames (uniform) repeated over its T time steps."""
    n, t = v.shape[0], v.shape[2]
    on = torch.rand(n, device=v.device) < p
    pick = torch.randint(0, t, (n,), device=v.device)
    frame = v[torch.arange(n, device=v.device), :, pick]  # (N, C, H, W)
    still = frame.unsqueeze(2).expand_as(v)
    return torch.where(on.view(n, 1, 1, 1, 1), still, v)


class VideoViews(nn.Module):
    """``n_views`` clips of each video (CVRL's temporal sampling and consistent augmentation).

    Views come in pairs from :func:`clip_indices` (a third view pairs with a fresh draw)."""

    def __init__(self, spec: VideoViewsConfig, size: int, n_views: int = 2):
        super().__init__()
        self.spec, self.size, self.n_views = spec, size, n_views

    def forward(self, x: Tensor) -> list[Tensor]:
        n, frames = x.shape[0], x.shape[1]
        s = self.spec
        out: list[Tensor] = []
        while len(out) < self.n_views:
            a, b = clip_indices(n, frames, s.clip_frames, s.stride, s.interval, x.device)
            for idx in (a, b)[: self.n_views - len(out)]:
                v = consistent_augment(take_frames(x, idx), s, self.size)
                out.append(still_clips(v, s.still_p) if s.still_p > 0 else v)
        return out


def eval_clip(x: Tensor, clip_frames: int, size: int) -> Tensor:
    """The deterministic clip for evaluation: ``clip_frames`` frames evenly spread over each video
    (uint8 (N, T, H, W, C)), resized to ``size`` -> float (N, C, clip_frames, size, size) in [0,
    1]."""
    n, frames, h, w, c = x.shape
    k = min(clip_frames, frames)
    pos = torch.linspace(0, frames - 1, k, device=x.device).round().long()
    v = take_frames(x, pos.expand(n, -1))
    if h != size or w != size:
        v = F.interpolate(
            v.reshape(n, c * k, h, w),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=h > size,
        ).view(n, c, k, size, size)
    return v


__all__ = [
    "VideoViewsConfig",
    "VideoViews",
    "clip_indices",
    "consistent_augment",
    "eval_clip",
    "interval_probs",
    "sample_gaps",
    "still_clips",
    "take_frames",
    "tube_mask",
]
