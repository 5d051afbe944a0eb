"""Batched image views made on the training device (plain torch ops, or kornia).

A :class:`ImageViews` takes a uint8 batch (N, C, H, W) and returns K float views in [0, 1]
(normalisation belongs to the encoder, so saved encoders carry their own input statistics).

Presets:

- ``cifar``: SimCLR's CIFAR recipe: random resized crop scale (0.2, 1), horizontal flip 0.5,
  colour jitter (0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2, no blur at 32 px.
- ``digits``: small grayscale images (chosen automatically for one channel up to 32 px), views at
  16 px: crop scale (0.6, 1), no flip (digits are not mirror-symmetric), a small affine (rotation up
  to 15 degrees, shift up to 10%) with p=0.8, brightness/contrast jitter (0.4, 0.4) with p=0.8. The
  crops keep at least 60% of the image: on 8x8 digits a crop of 40% leaves a few pixels, and the
  default run then ties the random-init encoder on the linear probe (BENCHMARKS.md, issue 14).
- ``imagenet``: crop scale (0.08, 1), flip 0.5, jitter (0.4, 0.4, 0.2, 0.1) p=0.8, grayscale 0.2,
  blur p=0.5 (kernel about a tenth of the size).
- ``none``: resize only (useful for methods that make their own corruption).

Views are random under torch's global generator, which the trainer seeds and checkpoints, so a
run is reproducible. Use :func:`seeded` to draw views under a fixed seed without touching it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
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
    """Probability of a small random affine (rotation up to ``rotate`` degrees, shift
    ``translate``)."""
    rotate: float = 0.0
    translate: float = 0.0


PRESETS = {
    "cifar": ViewSpec(size=32),
    "digits": ViewSpec(
        size=16,
        crop_scale=(0.6, 1.0),
        flip=0.0,
        jitter=(0.4, 0.4, 0.0, 0.0),
        grayscale_p=0.0,
        affine_p=0.8,
        rotate=15.0,
        translate=0.1,
    ),
    "imagenet": ViewSpec(size=224, crop_scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1), blur_p=0.5),
    "none": ViewSpec(
        size=32, crop_scale=(1.0, 1.0), flip=0.0, jitter=(0, 0, 0, 0), jitter_p=0.0, grayscale_p=0.0
    ),
}


def choose_preset(channels: int, size: int) -> str:
    """``digits`` for small single-channel images, ``cifar`` for colour up to 64 px, else
    ``imagenet``."""
    if channels == 1 and size <= 32:
        return "digits"
    return "cifar" if size <= 64 else "imagenet"


def resolve_spec(preset: str, channels: int, data_size: int, **overrides) -> tuple[str, ViewSpec]:
    """The view spec for data of ``channels`` x ``size`` px with the user's overrides applied."""
    name = choose_preset(channels, data_size) if preset == "auto" else preset
    if name not in PRESETS:
        from ..errors import ConfigError

        raise ConfigError(
            f"unknown image view preset '{name}'; choose one of: auto, {', '.join(PRESETS)}"
        )
    spec = PRESETS[name]
    if name == "none":
        spec = replace(spec, size=data_size)
    spec = replace(
        spec,
        **{
            k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None
        },
    )
    return name, spec


class ImageViews(nn.Module):
    """Make ``n_views`` augmented views of a uint8 image batch, batched on its device.

    ``backend="torch"`` (the default) draws every random parameter for the whole batch at once and
    applies crop, flip and affine as one ``grid_sample`` and the colour operations as a few
    element-wise tensor ops; on a 2-core CPU it is several times faster than kornia's pipeline
    (see BENCHMARKS.md). ``backend="kornia"`` uses kornia's augmentation modules. Both follow the
    same recipe; they differ in details: the torch backend applies the colour jitter in one random
    order per batch and shifts hue by a rotation in YIQ space (kornia: HSV).
    """

    def __init__(self, spec: ViewSpec, channels: int, n_views: int = 2, backend: str = "torch"):
        super().__init__()
        if backend not in ("torch", "kornia"):
            raise ValueError(f"unknown views backend '{backend}'; use torch or kornia")
        self.spec, self.channels, self.n_views, self.backend = spec, channels, n_views, backend
        if backend == "kornia":
            self.ops = _kornia_pipeline(spec, channels)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        """``x``: uint8 (N, C, H, W). Returns ``n_views`` float tensors (N, C, size, size) in [0,
        1]."""
        xf = x.float().div_(255.0)
        if self.backend == "kornia":
            return [self.ops(xf).clamp_(0, 1) for _ in range(self.n_views)]
        return [augment(xf, self.spec) for _ in range(self.n_views)]


def _kornia_pipeline(s: ViewSpec, channels: int) -> nn.Sequential:
    from kornia import augmentation as kaug

    ops: list[nn.Module] = [
        kaug.RandomResizedCrop(
            (s.size, s.size), scale=s.crop_scale, ratio=(3 / 4, 4 / 3), align_corners=False
        )
    ]
    if s.affine_p > 0:
        ops.append(
            kaug.RandomAffine(
                s.rotate, translate=(s.translate, s.translate), p=s.affine_p, align_corners=False
            )
        )
    if s.flip > 0:
        ops.append(kaug.RandomHorizontalFlip(p=s.flip))
    b, c, sat, hue = s.jitter
    if channels == 1:
        sat, hue = 0.0, 0.0  # no colour in one channel
    if s.jitter_p > 0 and any(v > 0 for v in (b, c, sat, hue)):
        ops.append(kaug.ColorJitter(b, c, sat, hue, p=s.jitter_p))
    if s.grayscale_p > 0 and channels == 3:
        ops.append(kaug.RandomGrayscale(p=s.grayscale_p))
    if s.blur_p > 0:
        k = blur_kernel_size(s.size)
        ops.append(kaug.RandomGaussianBlur((k, k), (0.1, 2.0), p=s.blur_p))
    return nn.Sequential(*ops)


def blur_kernel_size(size: int) -> int:
    return max(3, int(0.1 * size) // 2 * 2 + 1)


# -- the torch backend -------------------------------------------------------------------------

_GRAY = (0.299, 0.587, 0.114)


def _uniform(n: int, lo: float, hi: float, device) -> Tensor:
    return torch.rand(n, device=device) * (hi - lo) + lo


def crop_params(
    n: int, scale: tuple[float, float], ratio: tuple[float, float], device, tries: int = 10
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random resized crop boxes as (width, height, centre x, centre y) in units of the image side.

    Like torchvision: area ~ U(scale), log aspect ratio ~ U(log ratio); the first of ``tries``
    candidates that fits is used, else the whole image.
    """
    area = _uniform(n * tries, *scale, device).view(n, tries)
    logr = _uniform(
        n * tries,
        torch.log(torch.tensor(ratio[0])).item(),
        torch.log(torch.tensor(ratio[1])).item(),
        device,
    ).view(n, tries)
    r = logr.exp()
    w, h = (area * r).sqrt(), (area / r).sqrt()
    ok = (w <= 1) & (h <= 1)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
    pick = first.clamp_min(0)[:, None]
    w = torch.where(first >= 0, w.gather(1, pick)[:, 0], torch.ones(n, device=device))
    h = torch.where(first >= 0, h.gather(1, pick)[:, 0], torch.ones(n, device=device))
    cx = w / 2 + torch.rand(n, device=device) * (1 - w)
    cy = h / 2 + torch.rand(n, device=device) * (1 - h)
    return w, h, cx, cy


def geometry(n: int, spec: ViewSpec, device) -> Tensor:
    """Affine matrices (N, 2, 3) for ``affine_grid``: crop, then flip, then a small
    rotation/shift."""
    w, h, cx, cy = crop_params(n, spec.crop_scale, (3 / 4, 4 / 3), device)
    sx = torch.where(torch.rand(n, device=device) < spec.flip, -w, w)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 1, 1] = sx, h
    theta[:, 0, 2], theta[:, 1, 2] = 2 * cx - 1, 2 * cy - 1
    if spec.affine_p > 0:
        on = (torch.rand(n, device=device) < spec.affine_p).float()
        ang = torch.deg2rad(_uniform(n, -spec.rotate, spec.rotate, device)) * on
        tx = _uniform(n, -spec.translate, spec.translate, device) * 2 * on
        ty = _uniform(n, -spec.translate, spec.translate, device) * 2 * on
        cos, sin = ang.cos(), ang.sin()
        rot = torch.stack([torch.stack([cos, -sin, -tx], 1), torch.stack([sin, cos, -ty], 1)], 1)
        # output point -> rotated/shifted point -> crop box: compose the two maps
        full = torch.cat([rot, torch.tensor([0.0, 0.0, 1.0], device=device).expand(n, 1, 3)], 1)
        theta = theta @ full
    return theta


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    return torch.einsum(
        "nchw,c->nhw", x, torch.tensor(_GRAY, device=x.device, dtype=x.dtype)
    ).unsqueeze(1)


def _hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the chroma of RGB images by ``shift`` turns (a fraction of 2 pi) in YIQ space."""
    t = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device
    )
    ang = shift * 2 * torch.pi
    cos, sin = ang.cos(), ang.sin()
    rot = torch.zeros(len(x), 3, 3, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = torch.linalg.inv(t) @ rot @ t  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", m, x)


def color_jitter(x: Tensor, jitter: tuple[float, float, float, float], p: float) -> Tensor:
    """Brightness, contrast, saturation and hue jitter with probability ``p`` per image, factors
    drawn as in torchvision (brightness/contrast/saturation ~ U(1-j, 1+j), hue ~ U(-j, j))."""
    n, dev = len(x), x.device
    on = (torch.rand(n, device=dev) < p).float().view(n, 1, 1, 1)
    b, c, s, h = jitter
    if x.shape[1] == 1:
        s, h = 0.0, 0.0
    ops = [i for i, v in enumerate((b, c, s, h)) if v > 0]
    for i in torch.randperm(len(ops)).tolist():
        op = ops[i]
        if op == 3:
            shift = _uniform(n, -h, h, dev) * on.view(n)
            x = _hue(x, shift)
        else:
            j = (b, c, s)[op]
            f = 1 + (_uniform(n, 1 - j, 1 + j, dev).view(n, 1, 1, 1) - 1) * on
            if op == 0:
                x = x * f
            elif op == 1:
                m = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
                x = (x - m) * f + m
            else:
                g = _gray(x)
                x = (x - g) * f + g
        x = x.clamp(0, 1)
    return x


def gaussian_blur(x: Tensor, p: float, k: int, sigma: tuple[float, float] = (0.1, 2.0)) -> Tensor:
    """Separable Gaussian blur with sigma ~ U(sigma) with probability ``p`` per image."""
    n, c, hh, ww = x.shape
    sig = _uniform(n, *sigma, x.device)
    on = torch.rand(n, device=x.device) < p
    r = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    ker = torch.exp(-(r[None] ** 2) / (2 * sig[:, None] ** 2))
    ker = ker / ker.sum(1, keepdim=True)
    ident = torch.zeros(k, device=x.device)
    ident[k // 2] = 1
    ker = torch.where(on[:, None], ker, ident).repeat_interleave(c, 0)  # (N*C, k)
    y = x.reshape(1, n * c, hh, ww)
    y = nn.functional.pad(y, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    y = nn.functional.conv2d(y, ker.view(n * c, 1, 1, k), groups=n * c)
    y = nn.functional.conv2d(y, ker.view(n * c, 1, k, 1), groups=n * c)
    return y.view(n, c, hh, ww)


def _affine_grid(theta: Tensor, size: int) -> Tensor:
    """``affine_grid`` for square outputs (align_corners=False) as one batched matmul."""
    c = (torch.arange(size, device=theta.device, dtype=theta.dtype) * 2 + 1) / size - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    base = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(1, size * size, 3)
    return (base @ theta.transpose(1, 2)).view(len(theta), size, size, 2)


def augment(x: Tensor, spec: ViewSpec) -> Tensor:
    """One random view of a float batch in [0, 1] (N, C, H, W) -> (N, C, size, size)."""
    n = len(x)
    theta = geometry(n, spec, x.device)
    grid = _affine_grid(theta, spec.size)
    v = nn.functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    if spec.jitter_p > 0 and any(j > 0 for j in spec.jitter):
        v = color_jitter(v, spec.jitter, spec.jitter_p)
    if spec.grayscale_p > 0 and x.shape[1] == 3:
        g = torch.rand(n, device=x.device) < spec.grayscale_p
        v = torch.where(g.view(n, 1, 1, 1), _gray(v).expand_as(v), v)
    if spec.blur_p > 0:
        v = gaussian_blur(v, spec.blur_p, blur_kernel_size(spec.size))
    return v.clamp_(0, 1)


def eval_view(x: Tensor, size: int) -> Tensor:
    """The deterministic view used for evaluation: uint8 -> float [0, 1] at ``size`` px."""
    xf = x.float().div(255.0)
    if xf.shape[-1] != size or xf.shape[-2] != size:
        xf = nn.functional.interpolate(
            xf,
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=xf.shape[-1] > size,
        )
    return xf


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block under a fixed torch seed, restoring the global generator afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


#: fields of ``views.image`` that sat directly under ``views`` before (``views.size``)
FORMER_FIELDS = (
    "backend", "size", "crop_scale", "flip", "jitter", "jitter_p", "grayscale_p", "blur_p",
    "affine_p", "rotate", "translate", "eval_size", "local_size", "local_scale", "bss", "bss_ratio",
    "generator",
)  # fmt: skip


class ImageViewsConfig(BaseModel):
    """``views.image``: image view parameters; a field set here replaces the preset's
    (``digits``, ``cifar``, ``imagenet``, ``none``). ``views.size`` and the other former flat
    names are still read as these."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["torch", "kornia"] = "torch"
    """``torch``: batched plain-torch ops (fast on CPU); ``kornia``: kornia's augmentation
    modules."""
    size: int | None = Field(default=None, ge=4, le=1024)
    crop_scale: tuple[float, float] | None = None
    flip: float | None = Field(default=None, ge=0, le=1)
    jitter: tuple[float, float, float, float] | None = None
    jitter_p: float | None = Field(default=None, ge=0, le=1)
    grayscale_p: float | None = Field(default=None, ge=0, le=1)
    blur_p: float | None = Field(default=None, ge=0, le=1)
    affine_p: float | None = Field(default=None, ge=0, le=1)
    rotate: float | None = Field(default=None, ge=0, le=180)
    translate: float | None = Field(default=None, ge=0, le=1)
    eval_size: int | None = Field(default=None, ge=4, le=1024)
    """The size the encoder takes at evaluation and once saved (default: the view size).
    Training on views smaller than this is a cheap speed-up that also suits the crops: a random
    resized crop enlarges what it keeps, so a net trained on ``size`` px crops meets objects at
    about the same scale in whole images at a larger size (Touvron et al. 2019, FixRes); e.g.
    CIFAR-10 with ``views.image.size=24 views.image.eval_size=32``. Needs a backbone that takes
    any size (ConvNet, ResNet; ViT when the patch size divides both)."""
    local_size: int | None = Field(default=None, ge=4, le=1024)
    """Size of the local crops; default half the view size."""
    local_scale: tuple[float, float] = (0.05, 0.4)
    """Area fraction of the image each local crop covers."""
    bss: bool = False
    """Batch style standardisation (Scalbert et al. 2023): before the views are made, every image of
    the batch takes the low-frequency Fourier amplitude of one random image of the batch."""
    bss_placement: Literal["views", "batch"] = "views"
    """Where BSS applies: ``views``, each view batch after its augmentations with its own ratio and
    reference (the paper's); ``batch``, the raw batch once before them (before 2026-12)."""
    bss_ratio: tuple[float, float] = (0.01, 0.5)
    """(r_min, r_max): the area fraction of the replaced low-frequency box is drawn in this
    range."""
    generator: str | None = None
    """A view-generator plug-in (``selfsup.views.generator``): a registered name,
    ``module:function`` or ``file.py:function``, called as ``fn(images, seed)``; it replaces the
    hand-made views."""

    @field_validator("bss_ratio")
    @classmethod
    def _bss_ratio(cls, v):
        if not 0 <= v[0] <= v[1] <= 1:
            raise ValueError("bss_ratio must be two numbers 0 <= r_min <= r_max <= 1")
        return v

    @field_validator("crop_scale", "local_scale")
    @classmethod
    def _scale(cls, v):
        if v is not None and not (0 < v[0] <= v[1] <= 1):
            raise ValueError("crop_scale must be two numbers 0 < low <= high <= 1")
        return v
