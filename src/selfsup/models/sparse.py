"""Masked ("sparse") forward passes of ordinary CNNs and SparK's light hierarchical decoder.

Tian et al., *Designing BERT for Convolutional Networks: Sparse and Hierarchical Masked Modeling*
(SparK), ICLR 2023; the authors' ``keyu-tian/SparK`` (``pretrain/encoder.py``,
``pretrain/spark.py``, ``pretrain/decoder.py``) was read for this. A CNN cannot drop masked patches
the way a ViT drops tokens, so SparK emulates sparse convolution densely: masked positions are zero
in the input and are set back to zero after every convolution and pooling layer, and BatchNorm
computes its statistics over the visible positions only. :func:`sparse_forward` does this to any
backbone made of ``Conv2d``/``BatchNorm2d``/pooling layers (our ConvNet and ResNets), without
changing its weights, for the duration of a ``with`` block, and collects the feature map of every
resolution the network passes through (the last one computed at each size): the hierarchy the
decoder reconstructs from.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mask_at(active: Tensor, size: tuple[int, int]) -> Tensor:
    """The (N, 1, h, w) visibility map resampled (nearest) to ``size``."""
    if tuple(active.shape[-2:]) == tuple(size):
        return active
    return F.interpolate(active, size=size, mode="nearest")


def _sparse_bn(bn: nn.BatchNorm2d, active_ref: list, x: Tensor) -> Tensor:
    """BatchNorm over the visible positions only; masked positions stay zero (SparK's sparse BN)."""
    m = mask_at(active_ref[0], x.shape[-2:]).to(x.dtype)
    keep = m.squeeze(1).bool()
    nhwc = x.permute(0, 2, 3, 1)
    vis = nhwc[keep]  # (M, C)
    if vis.shape[0] < 2 and bn.training:
        return x * m
    training = bn.training or not bn.track_running_stats
    out = F.batch_norm(
        vis,
        bn.running_mean,
        bn.running_var,
        bn.weight,
        bn.bias,
        training,
        bn.momentum if bn.momentum is not None else 0.1,
        bn.eps,
    )
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    full = torch.zeros_like(nhwc)
    full[keep] = out.to(full.dtype)
    return full.permute(0, 3, 1, 2)


_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@contextlib.contextmanager
def sparse_forward(net: nn.Module, active: Tensor):
    """Within the block, ``net(x)`` runs as a sparse CNN for the visibility map ``active``.

    ``active``: (N, 1, h, w), 1 for visible cells. Yields a dict ``{(H, W): feature map}`` filled by
    the forward pass: for every spatial size, the last 4-D output computed at that size.
    """
    ref = [active]
    feats: dict[tuple[int, int], Tensor] = {}
    handles = []

    def remask(mod, inp, out):
        return out * mask_at(ref[0], out.shape[-2:]).to(out.dtype)

    def record(mod, inp, out):
        if isinstance(out, Tensor) and out.ndim == 4 and not isinstance(mod, _GLOBAL_POOLS):
            feats[tuple(out.shape[-2:])] = out

    saved = []
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            saved.append(mod)
            mod.forward = (lambda bn: lambda x: _sparse_bn(bn, ref, x))(mod)  # instance override
        elif isinstance(mod, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            handles.append(mod.register_forward_hook(remask))
        handles.append(mod.register_forward_hook(record))
    try:
        yield feats
    finally:
        for h in handles:
            h.remove()
        for mod in saved:
            del mod.forward


class LightDecoder(nn.Module):
    """SparK's decoder, lightly: densify each scale (mask token at masked cells, then a projection),
    then from the coarsest scale upwards: upsample to the next scale, a 3x3 conv-BN-ReLU, add that
    scale's projection; a 1x1 conv to pixels at the finest scale. Widths halve at each finer
    scale."""

    def __init__(self, enc_channels: list[int], out_channels: int, width: int = 64):
        super().__init__()
        widths = [max(8, width // 2**i) for i in range(len(enc_channels))]  # coarsest first
        self.mask_tokens = nn.ParameterList(
            [nn.Parameter(torch.randn(1, c, 1, 1) * 0.02) for c in enc_channels]
        )
        self.proj = nn.ModuleList(
            [
                nn.Conv2d(c, w, 1 if i == 0 else 3, padding=0 if i == 0 else 1)
                for i, (c, w) in enumerate(zip(enc_channels, widths, strict=True))
            ]
        )
        self.up = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(widths[i + 1]),
                    nn.ReLU(inplace=True),
                )
                for i in range(len(widths) - 1)
            ]
        )
        self.head = nn.Conv2d(widths[-1], out_channels, 1)

    def forward(self, feats: list[Tensor], active: Tensor) -> Tensor:
        """``feats``: encoder maps, coarsest first; ``active``: (N, 1, h, w) visibility."""
        x = None
        for i, f in enumerate(feats):
            m = mask_at(active, f.shape[-2:]).to(f.dtype)
            dense = self.proj[i](f * m + self.mask_tokens[i].to(f.dtype) * (1 - m))
            if x is None:
                x = dense
            else:
                x = self.up[i - 1](F.interpolate(x, size=f.shape[-2:], mode="nearest")) + dense
        return self.head(x)


@torch.no_grad()
def feature_channels(
    net: nn.Module, in_channels: int, size: int = 64
) -> tuple[list[int], list[int]]:
    """(channels, sizes) of the feature hierarchy of ``net`` on a ``size`` px probe, coarsest first.

    Runs once in eval mode (no statistics change) with everything visible."""
    was = net.training
    net.eval()
    try:
        x = torch.zeros(2, in_channels, size, size, device=next(net.parameters()).device)
        active = torch.ones(2, 1, 1, 1, device=x.device)
        with sparse_forward(net, active) as feats:
            net(x)
    finally:
        net.train(was)
    keys = sorted(feats, key=lambda k: k[0])
    return [feats[k].shape[1] for k in keys], [k[0] for k in keys]
