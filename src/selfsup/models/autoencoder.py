"""Small denoising autoencoders that a method trains on the raw data before pretraining (G-SimCLR
clusters their bottleneck features). Which one suits the data is the modality's choice
(:meth:`selfsup.modalities.Modality.reconstruction`): a flat MLP by default, a small ConvNet for
images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Reconstruction:
    """What a reconstruction pretext trains on: ``inputs`` (float, also the target, in the range the
    decoder's sigmoid reaches where the data has one), an ``encoder`` to ``dim`` features and a
    ``decoder`` back to the shape of ``inputs``."""

    inputs: Tensor
    encoder: nn.Module
    decoder: nn.Module


def flat_reconstruction(x: Tensor, dim: int, hidden: int) -> Reconstruction:
    """An MLP autoencoder on each sample flattened; uint8 data scaled to [0, 1], non-finite entries
    (missing or padded steps) set to 0."""
    xf = x.float() / 255.0 if x.dtype == torch.uint8 else torch.nan_to_num(x.float())
    d = xf[0].numel()
    enc = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, dim))
    dec = nn.Sequential(
        nn.Linear(dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, d),
        nn.Sigmoid(),
        nn.Unflatten(1, tuple(xf.shape[1:])),
    )
    return Reconstruction(xf, enc, dec)


def conv_reconstruction(x: Tensor, dim: int, max_size: int) -> Reconstruction:
    """A convolutional autoencoder on uint8 images (N, C, H, W) scaled to [0, 1] and resized to at
    most ``max_size`` px (a multiple of 4): two stride-2 convolutions down, a linear bottleneck,
    two transposed convolutions up."""
    xf = x.float() / 255.0
    size = min(max_size, xf.shape[-1]) // 4 * 4 or 4  # the two stride-2 stages need H % 4 == 0
    if xf.shape[-1] != size or xf.shape[-2] != size:
        xf = F.interpolate(
            xf, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    c, w = xf.shape[1], max(size // 4, 1)
    enc = nn.Sequential(
        nn.Conv2d(c, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * w * w, dim),
    )
    dec = nn.Sequential(
        nn.Linear(dim, 64 * w * w),
        nn.ReLU(),
        nn.Unflatten(1, (64, w, w)),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, c, 4, 2, 1),
        nn.Sigmoid(),
    )
    return Reconstruction(xf, enc, dec)
