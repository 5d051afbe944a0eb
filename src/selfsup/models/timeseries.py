"""Series encoders: inputs (N, C, T), NaN where a step is missing or padding, output (N, D).

Unequal lengths are NaN-padded after each series' last observed step (not resampled: resampling
would change the time scale of every pattern, and its length would be one more choice to tune),
and every encoder here respects that mask: NaN inputs become 0 (the channel mean, after the
encoder's standardisation), the padded tail is reset to 0 after every layer, so a convolution sees
zeros beyond a series' end whether or not it is padded to a longer batch, attention never attends to
padding, and pooling runs over the valid steps only. A series therefore gets the same
representation padded or not (``tests/timeseries/test_encoders.py``). A NaN *inside* a series is a
missing value: the dilated encoder zeroes its latent step as TS2Vec does, the others see 0 there.

Each backbone has ``forward_steps(x) -> (h (N, D, T), valid (N, 1, T))``, the per-step
representations (0 on padding) that TS2Vec's loss contrasts, and ``forward(x) -> (N, D)``, their
pooled instance representation.

- ``dilated`` (default): TS2Vec's encoder (Yue et al., AAAI 2022; ``yuezhihan/ts2vec``
  ``models/encoder.py``, ``models/dilated_conv.py``): a linear input projection to 64 channels, a
  random timestamp mask in training (each step's latent zeroed with probability 0.5), 10 residual
  blocks of two dilated convolutions (kernel 3, dilation 2^i, GELU before each), a final block to
  320 channels, dropout 0.1 on the output; max-pooled over time to the instance representation.
- ``fcn``: the fully convolutional network (Wang et al. 2017), average-pooled.
- ``resnet1d``: the 1-D ResNet of the same paper (3 residual blocks of 64, 128, 128 channels, each
  with kernels 8, 5, 3), average-pooled.
- ``transformer``: a small pre-norm transformer encoder (width 64, 3 layers, 4 heads, sinusoidal
  positions) with a padding mask, average-pooled.

``width`` scales every channel count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def observed_mask(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x with NaN set to 0, valid (N, 1, T))``: valid up to each series' last observed step."""
    seen = ~torch.isnan(x).all(dim=1, keepdim=True)  # (N, 1, T)
    t = torch.arange(x.shape[-1], device=x.device).view(1, 1, -1)
    last = torch.where(seen, t, torch.full_like(t, -1)).amax(dim=-1, keepdim=True)
    return torch.nan_to_num(x, nan=0.0), (t <= last)


def masked_max(h: Tensor, valid: Tensor) -> Tensor:
    return h.masked_fill(~valid, float("-inf")).amax(dim=-1)


def masked_mean(h: Tensor, valid: Tensor) -> Tensor:
    v = valid.to(h.dtype)
    return (h * v).sum(-1) / v.sum(-1).clamp_min(1)


def _w(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


class FCN(nn.Module):
    """The fully convolutional baseline for series classification (Wang, Yan & Oates, IJCNN 2017):
    three conv blocks (128, 256, 128 channels; kernels 8, 5, 3) with BatchNorm and ReLU, then global
    average pooling over the valid steps. ``width`` scales the channels."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        chans = [max(8, int(round(c * width))) for c in (128, 256, 128)]
        layers, c_in = [], in_channels
        for c, k in zip(chans, (8, 5, 3)):
            layers.append(
                nn.ModuleDict(
                    {
                        "conv": nn.Conv1d(c_in, c, k, padding="same", bias=False),
                        "bn": nn.BatchNorm1d(c),
                    }
                )
            )
            c_in = c
        self.blocks = nn.ModuleList(layers)
        self.out_dim = c_in

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, valid = observed_mask(x)
        v = valid.to(h.dtype)
        for b in self.blocks:
            h = torch.relu(_masked_bn(b["bn"], b["conv"](h), valid)) * v
        return h, valid

    def forward(self, x: Tensor) -> Tensor:
        return masked_mean(*self.forward_steps(x))


def _masked_bn(bn: nn.BatchNorm1d, h: Tensor, valid: Tensor) -> Tensor:
    """BatchNorm whose training statistics come from the valid steps only (padding never shifts
    them)."""
    if not bn.training:
        return bn(h)
    c = h.shape[1]
    flat = h.transpose(0, 1)[valid.transpose(0, 1).expand(c, -1, -1)].view(
        c, -1
    )  # (C, valid steps)
    mean, var = flat.mean(1), flat.var(1, unbiased=False)
    with torch.no_grad():
        n = flat.shape[1]
        m = bn.momentum if bn.momentum is not None else 0.1
        bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
        bn.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        bn.num_batches_tracked += 1
    out = (h - mean.view(1, c, 1)) / torch.sqrt(var.view(1, c, 1) + bn.eps)
    return out * bn.weight.view(1, c, 1) + bn.bias.view(1, c, 1)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in if j == 0 else c, c, k, padding="same", bias=False)
            for j, k in enumerate((8, 5, 3))
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(c) for _ in range(3))
        self.short = nn.Conv1d(c_in, c, 1, bias=False)
        self.short_bn = nn.BatchNorm1d(c)

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        v = valid.to(h.dtype)
        out = h
        for j, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            out = _masked_bn(bn, conv(out), valid)
            out = (torch.relu(out) if j < 2 else out) * v
        return torch.relu(out + _masked_bn(self.short_bn, self.short(h), valid)) * v


class ResNet1D(nn.Module):
    """The 1-D ResNet baseline of Wang, Yan & Oates (IJCNN 2017): three residual blocks (64, 128,
    128 channels), each of three conv + BatchNorm layers (kernels 8, 5, 3) and a 1x1 shortcut, then
    average pooling over the valid steps. BatchNorm statistics come from valid steps only."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        chans = [_w(c, width) for c in (64, 128, 128)]
        self.blocks = nn.ModuleList(
            _ResBlock(a, b) for a, b in zip([in_channels] + chans[:-1], chans, strict=True)
        )
        self.out_dim = chans[-1]

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, valid = observed_mask(x)
        for b in self.blocks:
            h = b(h, valid)
        return h, valid

    def forward(self, x: Tensor) -> Tensor:
        return masked_mean(*self.forward_steps(x))


class _DilatedBlock(nn.Module):
    def __init__(self, c_in: int, c: int, dilation: int, final: bool):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(c, c, 3, padding=dilation, dilation=dilation)
        self.proj = nn.Conv1d(c_in, c, 1) if c_in != c or final else None

    def forward(self, h: Tensor, v: Tensor) -> Tensor:
        res = h if self.proj is None else self.proj(h)
        out = self.conv1(F.gelu(h)) * v
        out = self.conv2(F.gelu(out))
        return (out + res) * v


class DilatedConvEncoder(nn.Module):
    """TS2Vec's encoder (see the module docstring): per-step representations, max-pooled.

    ``mask_p``: in training, each time step's projected input is zeroed with this probability
    (TS2Vec's binomial timestamp mask; 0 turns it off). Evaluation never masks. Steps where any
    channel is missing (NaN) are zeroed after the projection, as in the authors' code."""

    def __init__(
        self,
        in_channels: int,
        width: float = 1.0,
        hidden: int = 64,
        out: int = 320,
        depth: int = 10,
        mask_p: float = 0.5,
        dropout: float = 0.1,
    ):
        super().__init__()
        hid, o = _w(hidden, width), _w(out, width)
        self.input_fc = nn.Conv1d(in_channels, hid, 1)
        chans = [hid] * depth + [o]
        self.blocks = nn.ModuleList(
            _DilatedBlock(chans[i - 1] if i else hid, chans[i], 2**i, i == len(chans) - 1)
            for i in range(len(chans))
        )
        self.dropout = nn.Dropout(dropout)
        self.mask_p = mask_p
        self.out_dim = o

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        complete = ~torch.isnan(x).any(dim=1, keepdim=True)  # (N, 1, T): no channel missing
        x, valid = observed_mask(x)
        keep = complete & valid
        if self.training and self.mask_p > 0:
            keep = keep & (torch.rand(keep.shape, device=x.device) >= self.mask_p)
        h = self.input_fc(x) * keep.to(x.dtype)
        v = valid.to(h.dtype)
        for b in self.blocks:
            h = b(h, v)
        return self.dropout(h) * v, valid

    def forward(self, x: Tensor) -> Tensor:
        return masked_max(*self.forward_steps(x))


class SeriesTransformer(nn.Module):
    """A small transformer encoder for series: a linear projection of each step, sinusoidal
    positions, pre-norm encoder layers whose attention ignores padded and missing steps, average
    pooling over the valid steps."""

    def __init__(
        self,
        in_channels: int,
        width: float = 1.0,
        dim: int = 64,
        depth: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        d = max(heads, int(round(dim * width / heads)) * heads)
        self.input_fc = nn.Conv1d(in_channels, d, 1)
        layer = nn.TransformerEncoderLayer(
            d, heads, 2 * d, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out_dim = d

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        seen = ~torch.isnan(x).all(dim=1)  # (N, T)
        x, valid = observed_mask(x)
        n, _, t = x.shape
        h = self.input_fc(x).transpose(1, 2) + _sinusoid(t, self.out_dim, x.device, x.dtype)
        h = self.layers(h, src_key_padding_mask=~seen)
        h = self.norm(h).transpose(1, 2) * valid.to(h.dtype)
        return h, valid

    def forward(self, x: Tensor) -> Tensor:
        return masked_mean(*self.forward_steps(x))


def _sinusoid(t: int, d: int, device, dtype) -> Tensor:
    pos = torch.arange(t, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(
        torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d)
    )
    pe = torch.zeros(t, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe.to(dtype).unsqueeze(0)


SERIES_BACKBONES = {
    "dilated": lambda c, w: DilatedConvEncoder(c, width=w),
    "fcn": lambda c, w: FCN(c, width=w),
    "resnet1d": lambda c, w: ResNet1D(c, width=w),
    "transformer": lambda c, w: SeriesTransformer(c, width=w),
}


def build_series_backbone(name: str, in_channels: int, width: float = 1.0) -> nn.Module:
    from ..errors import ConfigError

    if name not in SERIES_BACKBONES:
        raise ConfigError(
            f"unknown series backbone '{name}'; choose one of: auto, {', '.join(SERIES_BACKBONES)}"
        )
    return SERIES_BACKBONES[name](in_channels, width)
