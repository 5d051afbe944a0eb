"""Features of a frozen encoder, and of the raw input for the pixel baseline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..views import eval_view


@torch.no_grad()
def extract(
    encoder: nn.Module,
    x: np.ndarray | torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor] | int,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Encoder features (N, D) in eval mode.

    ``x``: raw samples as the modality's ``to_tensor`` gives them (images: uint8 (N, C, H, W); a
    uint8 (N, H, W, C) array is accepted too); ``prepare`` maps a raw batch on the device to the
    encoder's input (``Modality.prepare``). An int ``prepare`` is the image size (image eval view).
    """
    if isinstance(prepare, int):
        size = prepare
        prepare = lambda b: eval_view(b, size)  # noqa: E731
    was_training = encoder.training
    encoder.eval()
    t = _as_tensor(x)
    out = []
    for i in range(0, len(t), batch_size):
        xb = prepare(t[i : i + batch_size].to(device))
        out.append(encoder(xb).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def raw_features(
    x: np.ndarray | torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Flattened pixels in [0, 1], standardised per channel: the raw-input baseline."""
    t = _as_nchw(x).float() / 255.0
    c = t.shape[1]
    return ((t - mean.view(1, c, 1, 1)) / std.view(1, c, 1, 1)).flatten(1)


def _as_nchw(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    return x


def _as_tensor(x) -> torch.Tensor:
    """Raw samples as a tensor: uint8 (N, H, W, C) image arrays become (N, C, H, W)."""
    if isinstance(x, np.ndarray):
        if x.dtype == np.uint8 and x.ndim == 4:
            return _as_nchw(x)
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, H, W, C), in [0, 1] units."""
    sample = x[:: max(1, len(x) // 10000)].astype(np.float32) / 255.0
    mean = sample.mean(axis=(0, 1, 2))
    std = sample.std(axis=(0, 1, 2))
    return [float(m) for m in mean], [float(max(s, 1e-3)) for s in std]
