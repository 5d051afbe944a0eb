"""Masked ("sparse") forward passes of ordinary CNNs and SparK's densify step and decoders.

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


def densify_norms(enc_channels: list[int], norm: str) -> nn.ModuleList:
    """SparK's ``densify_norms``, one a scale: ``bn`` a BatchNorm whose statistics count the
    visible positions only (applied with :func:`densify`), ``none`` the identity."""
    if norm not in ("bn", "none"):
        raise ValueError(f"densify norm must be 'bn' or 'none', not {norm!r}")
    return nn.ModuleList(
        [nn.BatchNorm2d(c) if norm == "bn" else nn.Identity() for c in enc_channels]
    )


def densify(f: Tensor, active: Tensor, token: Tensor, norm: nn.Module) -> Tensor:
    """SparK's densify step before the projection: normalise the sparse map ``f`` over its visible
    positions (``norm``: a BatchNorm2d, used as a sparse BatchNorm, or the identity), then fill the
    masked positions with the mask ``token``."""
    m = mask_at(active, f.shape[-2:]).to(f.dtype)
    if isinstance(norm, nn.BatchNorm2d):
        f = _sparse_bn(norm, [m], f)
    return f * m + token.to(f.dtype) * (1 - m)


class LightDecoder(nn.Module):
    """SparK's decoder, lightly: densify each scale (mask token at masked cells, then a projection),
    then from the coarsest scale upwards: upsample to the next scale, a 3x3 conv-BN-ReLU, add that
    scale's projection; a 1x1 conv to pixels at the finest scale. Widths halve at each finer
    scale. ``norm``: the densify normalisation (:func:`densify_norms`); ``"none"`` is the form of
    selfsup 0.x before the option existed."""

    def __init__(
        self, enc_channels: list[int], out_channels: int, width: int = 64, norm: str = "none"
    ):
        super().__init__()
        widths = [max(8, width // 2**i) for i in range(len(enc_channels))]  # coarsest first
        self.mask_tokens = nn.ParameterList(
            [nn.Parameter(torch.randn(1, c, 1, 1) * 0.02) for c in enc_channels]
        )
        self.norms = densify_norms(enc_channels, norm)  # no random draw: old inits unchanged
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
            dense = self.proj[i](densify(f, active, self.mask_tokens[i], self.norms[i]))
            if x is None:
                x = dense
            else:
                x = self.up[i - 1](F.interpolate(x, size=f.shape[-2:], mode="nearest")) + dense
        return self.head(x)


class UNetBlock(nn.Module):
    """SparK's UNet block (authors' ``pretrain/decoder.py``): a 4x4 transposed convolution of stride
    2 (``cin`` to ``cin``, bias), then 3x3 conv (``cin``, no bias), BatchNorm, ReLU6, 3x3 conv
    (``cin`` to ``cout``, no bias), BatchNorm; no activation after the last BatchNorm."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin, kernel_size=4, stride=2, padding=1, bias=True)
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cin, 3, padding=1, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(inplace=True),
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


class UNetDecoder(nn.Module):
    """SparK's decoder as the authors define it (``pretrain/spark.py``, ``pretrain/decoder.py``).

    ``n_blocks`` = log2 of the backbone's total stride: one :class:`UNetBlock` per factor 2, so the
    output has the image's resolution. Block ``i`` works at width ``width // 2**i`` (halving down to
    ``width // 2**n_blocks`` at full resolution, at least 1) and its input is the previous block's
    output plus the densified encoder map of that resolution, where the encoder has one
    (``enc_channels[i]``; ``None`` where it has none; maps at full resolution have no block to enter
    and are not used). Densify, per scale: :func:`densify` (norm, then mask token), then a
    projection to the block's width: the identity at the coarsest scale when the channels already
    match, a 1x1 convolution there otherwise, a 3x3 one at finer scales. A 1x1 convolution maps the
    last block to pixels. The blocks and the head are initialised as the authors' (truncated normal
    0.02 for convolutions, Kaiming fan-out for transposed ones, BatchNorm 1 and 0); mask tokens are
    truncated normal 0.02 within +-0.02; the projections keep PyTorch's initialisation, as theirs.
    """

    def __init__(
        self,
        enc_channels: list[int | None],
        out_channels: int,
        n_blocks: int,
        width: int = 64,
        norm: str = "bn",
    ):
        super().__init__()
        if len(enc_channels) != n_blocks:
            raise ValueError(f"{len(enc_channels)} encoder scales for {n_blocks} UNet blocks")
        if enc_channels[0] is None:
            raise ValueError("the coarsest UNet block has no encoder map")
        self.widths = [max(1, width // 2**i) for i in range(n_blocks + 1)]
        self.used = [i for i, c in enumerate(enc_channels) if c is not None]
        chans = [int(c) for c in enc_channels if c is not None]
        tokens = []
        for c in chans:
            t = nn.Parameter(torch.zeros(1, c, 1, 1))
            nn.init.trunc_normal_(t, mean=0.0, std=0.02, a=-0.02, b=0.02)
            tokens.append(t)
        self.mask_tokens = nn.ParameterList(tokens)
        self.norms = densify_norms(chans, norm)
        projs: list[nn.Module] = []
        for i, c in zip(self.used, chans, strict=True):
            if i == 0 and c == self.widths[0]:
                projs.append(nn.Identity())
            else:
                k = 1 if i == 0 else 3
                projs.append(nn.Conv2d(c, self.widths[i], k, padding=k // 2, bias=True))
        self.proj = nn.ModuleList(projs)
        self.blocks = nn.ModuleList(
            [UNetBlock(self.widths[i], self.widths[i + 1]) for i in range(n_blocks)]
        )
        self.head = nn.Conv2d(self.widths[-1], out_channels, 1)
        for mod in [*self.blocks.modules(), self.head]:
            if isinstance(mod, nn.Conv2d):
                nn.init.trunc_normal_(mod.weight, std=0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(self, feats: list[Tensor], active: Tensor) -> Tensor:
        """``feats``: the encoder maps the blocks take, in the order of ``enc_channels``' non-None
        entries (coarsest first); ``active``: (N, 1, h, w) visibility."""
        dense = {
            i: self.proj[j](densify(f, active, self.mask_tokens[j], self.norms[j]))
            for j, (i, f) in enumerate(zip(self.used, feats, strict=True))
        }
        x = dense[0]  # the coarsest block always has a map (checked when built)
        for i, block in enumerate(self.blocks):
            if i and i in dense:
                x = x + dense[i]
            x = block(x)
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
