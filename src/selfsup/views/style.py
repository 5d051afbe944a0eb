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
any view maker: ``views = BatchStyle(views, (r_min, r_max))`` standardises the raw uint8 batch and
hands it to the wrapped maker, so it works with every method and every view recipe.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def low_frequency_box(h: int, w: int, r: float, device=None) -> Tensor:
    """(h, w) 0/1 mask of the centred box of area fraction about ``r`` in a *shifted* spectrum.

    The box spans ``2a + 1`` rows and ``2b + 1`` columns around the zero frequency (``h // 2``,
    ``w // 2``), ``a = round((sqrt(r) h - 1) / 2)``; ``r >= 1`` is the whole spectrum, and a box that
    reaches the border covers it entirely (so it stays symmetric for even sizes)."""
    m = torch.zeros(h, w, device=device)
    if r <= 0:
        return m
    if r >= 1:
        return m + 1
    a = max(0, round((math.sqrt(r) * h - 1) / 2))
    b = max(0, round((math.sqrt(r) * w - 1) / 2))
    ch, cw = h // 2, w // 2
    rows = slice(0, h) if a >= ch else slice(ch - a, ch + a + 1)
    cols = slice(0, w) if b >= cw else slice(cw - b, cw + b + 1)
    m[rows, cols] = 1
    return m


def standardize_styles(x: Tensor, r: float, ref: int) -> Tensor:
    """Give every image of ``x`` (N, C, H, W) float the low-frequency amplitude of image ``ref``.

    Returns a float tensor of the same shape (not clamped)."""
    n, c, h, w = x.shape
    f = torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1))
    amp, phase = f.abs(), f.angle()
    m = low_frequency_box(h, w, r, x.device).double()
    amp = (1 - m) * amp + m * amp[ref:ref + 1]
    out = torch.fft.ifft2(torch.fft.ifftshift(torch.polar(amp, phase), dim=(-2, -1)))
    return out.real.to(x.dtype if x.is_floating_point() else torch.float32)


class BatchStyle(nn.Module):
    """A view maker that standardises the batch's style, then calls the wrapped view maker.

    ``ratio``: (r_min, r_max), the range of the area fraction of the replaced low-frequency box.
    Random draws come from torch's global generator (seeded and checkpointed by the trainer).
    """

    def __init__(self, views: nn.Module, ratio: tuple[float, float] = (0.01, 0.5)):
        super().__init__()
        lo, hi = ratio
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"BSS ratio must be 0 <= r_min <= r_max <= 1, got {ratio}")
        self.views, self.ratio = views, (float(lo), float(hi))

    def __getattr__(self, name):  # n_views, spec, ... of the wrapped maker
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("views"), name)

    @torch.no_grad()
    def standardize(self, x: Tensor) -> Tensor:
        """The uint8 batch (N, C, H, W) with one style (uint8 again, rounded and clipped)."""
        lo, hi = self.ratio
        r = lo + (hi - lo) * float(torch.rand(()))
        ref = int(torch.randint(len(x), ()))
        y = standardize_styles(x.float(), r, ref)
        return y.round_().clamp_(0, 255).to(x.dtype) if not x.is_floating_point() else y

    def forward(self, x: Tensor):
        return self.views(self.standardize(x))
