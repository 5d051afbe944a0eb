"""Batched image views made on the training device with kornia.

A :class:`ImageViews` takes a uint8 batch (N, C, H, W) and returns K float views in [0, 1]
(normalisation belongs to the encoder, so saved encoders carry their own input statistics).

Presets:

- ``cifar``: SimCLR's CIFAR recipe: random resized crop scale (0.2, 1), horizontal flip 0.5,
  colour jitter (0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2, no blur at 32 px.
- ``digits``: small grayscale digits, upsampled to 16 px: crop scale (0.4, 1), no flip (digits are
  not mirror-symmetric), a small affine (rotation up to 15 degrees, shift up to 10%) with p=0.8,
  brightness/contrast jitter (0.4, 0.4) with p=0.8.
- ``imagenet``: crop scale (0.08, 1), flip 0.5, jitter (0.4, 0.4, 0.2, 0.1) p=0.8, grayscale 0.2,
  blur p=0.5 (kernel about a tenth of the size).
- ``none``: resize only (useful for methods that make their own corruption).

Views are random under torch's global generator, which the trainer seeds and checkpoints, so a
run is reproducible. Use :func:`seeded` to draw views under a fixed seed without touching it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import kornia.augmentation as K
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ViewSpec:
    size: int
    crop_scale: tuple[float, float] = (0.2, 1.0)
    flip: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    affine_p: float = 0.0
    """Probability of a small random affine (rotation up to ``rotate`` degrees, shift ``translate``)."""
    rotate: float = 0.0
    translate: float = 0.0


PRESETS = {
    "cifar": ViewSpec(size=32),
    "digits": ViewSpec(size=16, crop_scale=(0.4, 1.0), flip=0.0, jitter=(0.4, 0.4, 0.0, 0.0),
                       grayscale_p=0.0, affine_p=0.8, rotate=15.0, translate=0.1),
    "imagenet": ViewSpec(size=224, crop_scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1), blur_p=0.5),
    "none": ViewSpec(size=32, crop_scale=(1.0, 1.0), flip=0.0, jitter=(0, 0, 0, 0), jitter_p=0.0,
                     grayscale_p=0.0),
}


def choose_preset(channels: int, size: int) -> str:
    """``digits`` for small single-channel images, ``cifar`` for colour up to 64 px, else ``imagenet``."""
    if channels == 1 and size <= 32:
        return "digits"
    return "cifar" if size <= 64 else "imagenet"


def resolve_spec(preset: str, channels: int, data_size: int, **overrides) -> tuple[str, ViewSpec]:
    """The view spec for data of ``channels`` x ``size`` px with the user's overrides applied."""
    name = choose_preset(channels, data_size) if preset == "auto" else preset
    spec = PRESETS[name]
    if name == "none":
        spec = replace(spec, size=data_size)
    spec = replace(spec, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None})
    return name, spec


class ImageViews(nn.Module):
    """Make ``n_views`` augmented views of a uint8 image batch, batched on its device."""

    def __init__(self, spec: ViewSpec, channels: int, n_views: int = 2):
        super().__init__()
        self.spec, self.channels, self.n_views = spec, channels, n_views
        s = spec
        ops: list[nn.Module] = [K.RandomResizedCrop((s.size, s.size), scale=s.crop_scale,
                                                    ratio=(3 / 4, 4 / 3), align_corners=False)]
        if s.affine_p > 0:
            ops.append(K.RandomAffine(s.rotate, translate=(s.translate, s.translate), p=s.affine_p,
                                      align_corners=False))
        if s.flip > 0:
            ops.append(K.RandomHorizontalFlip(p=s.flip))
        b, c, sat, hue = s.jitter
        if channels == 1:
            sat, hue = 0.0, 0.0  # no colour in one channel
        if s.jitter_p > 0 and any(v > 0 for v in (b, c, sat, hue)):
            ops.append(K.ColorJitter(b, c, sat, hue, p=s.jitter_p))
        if s.grayscale_p > 0 and channels == 3:
            ops.append(K.RandomGrayscale(p=s.grayscale_p))
        if s.blur_p > 0:
            k = max(3, int(0.1 * s.size) // 2 * 2 + 1)
            ops.append(K.RandomGaussianBlur((k, k), (0.1, 2.0), p=s.blur_p))
        self.ops = nn.Sequential(*ops)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        """``x``: uint8 (N, C, H, W). Returns ``n_views`` float tensors (N, C, size, size) in [0, 1]."""
        xf = x.float().div_(255.0)
        return [self.ops(xf).clamp_(0, 1) for _ in range(self.n_views)]


def eval_view(x: Tensor, size: int) -> Tensor:
    """The deterministic view used for evaluation: uint8 -> float [0, 1] at ``size`` px."""
    xf = x.float().div(255.0)
    if xf.shape[-1] != size or xf.shape[-2] != size:
        xf = nn.functional.interpolate(xf, size=(size, size), mode="bilinear", align_corners=False,
                                       antialias=xf.shape[-1] > size)
    return xf


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block under a fixed torch seed, restoring the global generator afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
