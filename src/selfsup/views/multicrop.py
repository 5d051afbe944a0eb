"""Multi-crop views (Caron et al., *Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments*, NeurIPS 2020): ``n_global`` crops at the full view size plus ``n_local`` smaller
crops of a smaller area, all made in batches on the device.

The global views come first; methods pair each global view with every other view (see
``selfsup.methods._common.pairs``), so the local crops add positives at little cost.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from .image import ImageViews, ViewSpec


class MultiCropViews(nn.Module):
    """``n_global`` views from ``spec`` and ``n_local`` views of ``local_size`` px whose crops cover
    a ``local_scale`` fraction of the image."""

    def __init__(
        self,
        spec: ViewSpec,
        channels: int,
        n_global: int = 2,
        n_local: int = 4,
        local_size: int | None = None,
        local_scale: tuple[float, float] = (0.05, 0.4),
        backend: str = "torch",
    ):
        super().__init__()
        local_size = local_size or max(4, spec.size // 2)
        self.n_global, self.n_local, self.local_size = n_global, n_local, local_size
        self.spec = spec
        self.global_views = ImageViews(spec, channels, n_global, backend)
        self.local_views = (
            ImageViews(
                replace(spec, size=local_size, crop_scale=tuple(local_scale)),
                channels,
                n_local,
                backend,
            )
            if n_local > 0
            else None
        )

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        out = self.global_views(x)
        if self.local_views is not None:
            out += self.local_views(x)
        return out
