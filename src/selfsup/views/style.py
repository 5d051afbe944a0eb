"""Batch Styles Standardization (BSS): one style for the whole batch, before the usual views.

Scalbert, Vakalopoulou, Couzinie-Devy, *Improving Domain-Invariance in Self-Supervised Learning via
Batch Styles Standardization* (2023). Per batch, draw a ratio ``r ~ U(r_min, r_max)`` and one
reference image ``j`` of the batch; for every image ``i`` and channel, keep the phase of its 2-D
Fourier transform and replace the centred low-frequency box of area fraction ``r`` of its (shifted)
amplitude spectrum by the reference's::

    A_i <- (1 - M_r) * A_i + M_r * A_j,      x_i <- IFFT(A_i * exp(1j * phase_i))

Low-frequency amplitude carries "style" (colour, contrast, illumination); the batch then shares one
style, so a contrastive loss cannot tell negatives apart by style and must use content. The box is
symmetric about the zero frequency, so the result is real (up to rounding).

:func:`standardize_styles` is the transform (float images, no clamping); :class:`BatchStyle` wraps
any view maker: ``views = BatchStyle(views, (r_min, r_max))`` standardises each view batch the
wrapped maker makes (the paper's placement, after the colour augmentations, with a reference per
view; ``placement="batch"``: the raw batch once, before them), so it works with every method and
every view recipe.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def low_frequency_mask(shape: tuple[int, ...], r: float, device=None) -> Tensor:
    """0/1 mask of the centred box of volume fraction about ``r`` in a *shifted* spectrum of
    ``shape``.

    Along each of the ``d`` axes of size ``n`` the box spans ``2a + 1`` entries around the zero
    frequency (index ``n // 2``), ``a = round((r^(1/d) n - 1) / 2)``; ``r >= 1`` is the whole
    spectrum, and a box that reaches the border covers that axis entirely (so it stays symmetric for
    even
    sizes)."""
    m = torch.zeros(shape, device=device)
    if r <= 0:
        return m
    if r >= 1:
        return m + 1
    side = r ** (1 / len(shape))
    index = []
    for n in shape:
        a, c = max(0, round((side * n - 1) / 2)), n // 2
        index.append(slice(0, n) if a >= c else slice(c - a, c + a + 1))
    m[tuple(index)] = 1
    return m


def low_frequency_box(h: int, w: int, r: float, device=None) -> Tensor:
    """The (h, w) image case of :func:`low_frequency_mask`."""
    return low_frequency_mask((h, w), r, device)


def standardize_styles(x: Tensor, r: float, ref: int) -> Tensor:
    """Give every sample of ``x`` (N, C, *dims) float the low-frequency amplitude of sample ``ref``.

    Images (N, C, H, W) use the 2-D transform; series (N, C, T) the 1-D one. Returns a float tensor
    of the same shape (not clamped)."""
    dims = tuple(range(2, x.ndim))
    f = torch.fft.fftshift(torch.fft.fftn(x.double(), dim=dims), dim=dims)
    amp, phase = f.abs(), f.angle()
    m = low_frequency_mask(tuple(x.shape[2:]), r, x.device).double()
    amp = (1 - m) * amp + m * amp[ref : ref + 1]
    out = torch.fft.ifftn(torch.fft.ifftshift(torch.polar(amp, phase), dim=dims), dim=dims)
    return out.real.to(x.dtype if x.is_floating_point() else torch.float32)


class BatchStyle(nn.Module):
    """A view maker that gives each view batch one style.

    ``placement="views"`` (the paper's): the wrapped maker makes the views, then each view batch
    is standardised with its own ratio and reference image (after colour jitter, which would
    otherwise give the batch its styles back). ``"batch"``: the raw batch is standardised once,
    with one reference, before the wrapped maker (this module's behaviour before 2026-12).
    ``ratio``: (r_min, r_max), the range of the area fraction of the replaced low-frequency box.
    Random draws come from torch's global generator (seeded and checkpointed by the trainer).
    """

    def __init__(
        self,
        views: nn.Module,
        ratio: tuple[float, float] = (0.01, 0.5),
        placement: str = "views",
    ):
        super().__init__()
        lo, hi = ratio
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"BSS ratio must be 0 <= r_min <= r_max <= 1, got {ratio}")
        if placement not in ("views", "batch"):
            raise ValueError(f"BSS placement must be 'views' or 'batch', got {placement!r}")
        self.views, self.ratio, self.placement = views, (float(lo), float(hi)), placement

    def __getattr__(self, name):  # n_views, spec, ... of the wrapped maker
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("views"), name)

    @torch.no_grad()
    def standardize(self, x: Tensor) -> Tensor:
        """The batch with one style: uint8 images come back as uint8 (rounded, clipped to 0-255),
        float views in [0, 1] clipped to [0, 1]."""
        lo, hi = self.ratio
        r = lo + (hi - lo) * float(torch.rand(()))
        ref = int(torch.randint(len(x), ()))
        y = standardize_styles(x.float(), r, ref)
        if not x.is_floating_point():
            return y.round_().clamp_(0, 255).to(x.dtype)
        return y.clamp_(0, 1).to(x.dtype)

    def forward(self, x: Tensor):
        if self.placement == "batch":
            return self.views(self.standardize(x))
        return [self.standardize(v) for v in self.views(x)]
