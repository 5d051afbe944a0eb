"""Time series: float (N, C, T) containers (NaN-padded to the longest series), series views and
masked 1-D encoders. The encoder carries per-channel statistics of the training split."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..data.base import SeriesData
from ..errors import ConfigError
from .base import Modality, register


class SeriesModality(Modality):
    name = "timeseries"
    input_ndim = 3

    def input_meta(self, cfg, train: SeriesData):
        from ..views.timeseries import SERIES_PRESETS

        preset = "jitter_scale" if cfg.views.preset == "auto" else cfg.views.preset
        if preset not in SERIES_PRESETS:
            raise ConfigError(f"unknown series view preset '{preset}'; choose one of: auto, "
                              f"{', '.join(SERIES_PRESETS)}")
        mean = np.nanmean(train.x, axis=(0, 2))
        std = np.nanstd(train.x, axis=(0, 2))
        return preset, {"in_channels": train.channels, "length": train.length, "preset": preset,
                        "mean": [float(m) for m in np.nan_to_num(mean)],
                        "std": [float(max(s, 1e-6)) if np.isfinite(s) else 1.0 for s in std]}

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.timeseries import SERIES_PRESETS, SeriesViews

        return SeriesViews(SERIES_PRESETS[meta["preset"]], meta["std"], cfg.views.n_views)

    def default_backbone(self, meta: dict) -> str:
        return "fcn"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.timeseries import build_series_backbone

        return build_series_backbone(self.default_backbone(meta) if name == "auto" else name,
                                     meta["in_channels"], model_cfg.width)

    def to_tensor(self, data: SeriesData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        return x.float()

    def raw_features(self, data: SeriesData, meta: dict) -> Tensor:
        """The series standardised per channel, missing/padded steps 0, flattened (N, C * T)."""
        mean, std = self.normalisation(meta)
        return torch.nan_to_num((torch.from_numpy(data.x) - mean) / std, nan=0.0).flatten(1)


register(SeriesModality())
