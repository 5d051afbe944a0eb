"""Series encoders: inputs (N, C, T), NaN where a step is missing or padding, output (N, D).

Every encoder here respects the mask of observed steps: NaN inputs become 0, and after every layer
the padded tail is reset to 0, so a series gives the same representation whether or not it is
padded to a longer batch (the convolutions see zeros beyond its end either way); pooling runs over
its valid steps only.
"""

from __future__ import annotations

import torch
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


class FCN(nn.Module):
    """The fully convolutional baseline for series classification (Wang, Yan & Oates, IJCNN 2017):
    three conv blocks (128, 256, 128 channels; kernels 8, 5, 3) with BatchNorm and ReLU, then global
    average pooling over the valid steps. ``width`` scales the channels."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        chans = [max(8, int(round(c * width))) for c in (128, 256, 128)]
        layers, c_in = [], in_channels
        for c, k in zip(chans, (8, 5, 3)):
            layers.append(nn.ModuleDict({"conv": nn.Conv1d(c_in, c, k, padding="same", bias=False),
                                         "bn": nn.BatchNorm1d(c)}))
            c_in = c
        self.blocks = nn.ModuleList(layers)
        self.out_dim = c_in

    def forward(self, x: Tensor) -> Tensor:
        h, valid = observed_mask(x)
        v = valid.to(h.dtype)
        for b in self.blocks:
            h = torch.relu(_masked_bn(b["bn"], b["conv"](h), valid)) * v
        return masked_mean(h, valid)


def _masked_bn(bn: nn.BatchNorm1d, h: Tensor, valid: Tensor) -> Tensor:
    """BatchNorm whose training statistics come from the valid steps only (padding never shifts them)."""
    if not bn.training:
        return bn(h)
    c = h.shape[1]
    flat = h.transpose(0, 1)[valid.transpose(0, 1).expand(c, -1, -1)].view(c, -1)  # (C, valid steps)
    mean, var = flat.mean(1), flat.var(1, unbiased=False)
    with torch.no_grad():
        n = flat.shape[1]
        m = bn.momentum if bn.momentum is not None else 0.1
        bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
        bn.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        bn.num_batches_tracked += 1
    out = (h - mean.view(1, c, 1)) / torch.sqrt(var.view(1, c, 1) + bn.eps)
    return out * bn.weight.view(1, c, 1) + bn.bias.view(1, c, 1)


SERIES_BACKBONES = {
    "fcn": lambda c, w: FCN(c, width=w),
}


def build_series_backbone(name: str, in_channels: int, width: float = 1.0) -> nn.Module:
    from ..errors import ConfigError

    if name not in SERIES_BACKBONES:
        raise ConfigError(f"unknown series backbone '{name}'; choose one of: auto, {', '.join(SERIES_BACKBONES)}")
    return SERIES_BACKBONES[name](in_channels, width)
