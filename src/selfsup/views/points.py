"""Batched point-cloud views on the training device, and the patch ops the point encoders use.

A batch is float (B, 3, P). Each view, for every cloud of the batch at once (random under torch's
global generator, which the trainer keys by (seed, step)):

1. partial crop (``crop``, probability ``crop_p``): the ``f`` nearest points to a random point of
   the cloud, ``f`` uniform in [``crop``, 1] of P, resampled to P points (drawn with repetition);
2. point dropout (``dropout``): up to this fraction of the points replaced by copies of another
   point of the same cloud (P is kept; a max-pooled encoder is unchanged by duplicates);
3. rotation: ``up`` about the up axis (``up_axis``: 0 x, 1 y, 2 z), ``so3`` uniformly in SO(3),
   ``none``;
4. anisotropic scaling: each axis times a factor uniform in ``scale``;
5. translation (``translate``): the cloud shifted along each axis by an offset uniform in
   [-``translate``, ``translate``] (0, off, by default; Point-MAE's pretraining: 0.2, with scaling
   2/3-3/2 and nothing else);
6. jitter: Gaussian noise of ``jitter`` (clipped at 5 sigma) on every coordinate.

Defaults: the augmentations of point-cloud contrastive work (rotation about the up axis, scaling
0.8-1.25, jitter 0.01, dropout up to 20%, crops of 60-100% in half of the views).

``align`` is not a view: it is the encoder's input frame (``pca``, the default: every cloud turned
into its principal axes before the backbone, in training and evaluation alike; ``none``: as given),
set here because this section is the points modality's own.

:func:`farthest_point_sample` and :func:`knn_group` cut a cloud into patches (Point-MAE's
grouping: centres by farthest-point sampling, each patch the ``k`` nearest points of its centre,
in the centre's frame); both are plain batched torch and run on the device.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ..models.points import farthest_point_sample, group, knn_group  # noqa: F401 (re-exported)


class PointViewsConfig(BaseModel):
    """``views.points``: the point-cloud view maker's parameters
    (``--set views.points.jitter=0``)."""

    model_config = ConfigDict(extra="forbid")
    rotate: Literal["up", "so3", "none"] = "up"
    up_axis: int = Field(default=2, ge=0, le=2)
    scale: tuple[float, float] = (0.8, 1.25)
    translate: float = Field(default=0.0, ge=0)
    jitter: float = Field(default=0.01, ge=0)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    crop: float = Field(default=0.6, gt=0, le=1)
    crop_p: float = Field(default=0.5, ge=0, le=1)
    #: the encoder's input frame, kept with the saved encoder: each cloud turned into its
    #: principal axes (``pca``; :func:`selfsup.models.points.canonical_pose`) or as given
    align: Literal["pca", "none"] = "pca"


def rotation_matrices(b: int, mode: str, up_axis: int, device: torch.device) -> Tensor:
    """(b, 3, 3) random rotations: about axis ``up_axis`` (``up``), uniform in SO(3) (``so3``:
    QR of a Gaussian matrix with signs fixed), or the identity (``none``)."""
    if mode == "none":
        return torch.eye(3, device=device).expand(b, 3, 3).clone()
    if mode == "so3":
        q, r = torch.linalg.qr(torch.randn(b, 3, 3, device=device))
        q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2)).unsqueeze(1)
        det = torch.linalg.det(q)
        q[:, :, 0] = q[:, :, 0] * det.sign().unsqueeze(1)
        return q
    a = torch.rand(b, device=device) * 2 * math.pi
    c, s = a.cos(), a.sin()
    o, z = torch.ones_like(a), torch.zeros_like(a)
    i, j = [k for k in range(3) if k != up_axis]
    m = torch.stack([o, z, z, z, o, z, z, z, o], 1).view(b, 3, 3).clone()
    m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
    return m


class PointViews(nn.Module):
    """``n_views`` random views of a (B, 3, P) batch (see the module docstring)."""

    def __init__(self, spec: PointViewsConfig, n_views: int) -> None:
        super().__init__()
        self.spec, self.n_views = spec, n_views

    def one(self, x: Tensor) -> Tensor:
        s, (b, _, p), dev = self.spec, x.shape, x.device
        x = x.float()
        if s.crop < 1 and s.crop_p > 0:
            seed = x.gather(2, torch.randint(0, p, (b, 1, 1), device=dev).expand(b, 3, 1))
            order = ((x - seed) ** 2).sum(1).argsort(1)  # (B, P) nearest first
            keep = torch.where(
                torch.rand(b, device=dev) < s.crop_p,
                (p * (s.crop + (1 - s.crop) * torch.rand(b, device=dev))).long().clamp(1, p),
                torch.full((b,), p, device=dev),
            )
            pick = (torch.rand(b, p, device=dev) * keep[:, None]).long()
            x = x.gather(2, order.gather(1, pick)[:, None].expand(b, 3, p))
        if s.dropout > 0:
            frac = torch.rand(b, 1, device=dev) * s.dropout
            drop = torch.rand(b, p, device=dev) < frac
            src = torch.randint(0, p, (b, p), device=dev)
            idx = torch.where(drop, src, torch.arange(p, device=dev).expand(b, p))
            x = x.gather(2, idx[:, None].expand(b, 3, p))
        x = rotation_matrices(b, s.rotate, s.up_axis, dev) @ x
        lo, hi = s.scale
        x = x * (lo + (hi - lo) * torch.rand(b, 3, 1, device=dev))
        if s.translate > 0:
            x = x + s.translate * (2 * torch.rand(b, 3, 1, device=dev) - 1)
        if s.jitter > 0:
            x = x + (s.jitter * torch.randn_like(x)).clamp(-5 * s.jitter, 5 * s.jitter)
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.one(x) for _ in range(self.n_views)]
