"""Time series: float (N, C, T) containers (NaN-padded to the longest series), series views and
masked 1-D encoders. The encoder carries per-channel statistics of the training split.

Unequal lengths are padded with NaN, never resampled, and every encoder masks the padding (see
:mod:`selfsup.models.timeseries`): a series' representation does not depend on how long the other
series of its batch are, and no pattern is stretched to a common length. NaN inside a series is a
missing value, which the encoders mask too; a series with no observed step is refused.

When the user leaves them unset, series runs take their own defaults
(:meth:`SeriesModality.config_defaults`): the ``dilated`` encoder (TS2Vec's), the method's view
preset (else ``default``), AdamW at lr 1e-3, a batch of at most 16 (half the training split when
smaller), epochs for about 300 steps, kNN with k = 5, and the ``svm`` protocol beside kNN and
linear.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data.base import SeriesData
from ..errors import ConfigError, DataError
from ..views.timeseries import SeriesViewsConfig
from .base import EncoderMeta, Modality, register, step_budget

if TYPE_CHECKING:
    from ..methods.base import Needs

#: steps a default series run aims at (epochs are derived from it and the training split's size)
TARGET_STEPS = 300


class SeriesMeta(EncoderMeta, total=False):
    """A series encoder's ``meta``: its channels and the training length."""

    in_channels: Required[int]
    length: Required[int]
    mean: Required[list[float]]
    std: Required[list[float]]


class SeriesModality(Modality):
    name = "timeseries"
    meta_type = SeriesMeta
    views_fields = frozenset({"series"})
    input_layout = "(N, C, T) float series"
    input_ndim = 3

    def backbone_names(self) -> list[str]:
        from ..models.timeseries import SERIES_BACKBONES

        return list(SERIES_BACKBONES)

    def config_defaults(self, cfg, train: SeriesData) -> dict:
        return {
            "train": {
                **step_budget(len(train), 16, TARGET_STEPS),
            },
            "optim": {"lr": 1e-3},
            "eval": {"protocols": ["knn", "linear", "svm"], "knn_k": 5},
        }

    def input_meta(self, cfg, train: SeriesData, needs: Needs):
        from ..views.timeseries import SERIES_PRESETS, spec_with

        preset = cfg.views.preset
        if preset == "auto":
            preset = needs.view_preset if needs.view_preset in SERIES_PRESETS else "default"
        if preset not in SERIES_PRESETS:
            raise ConfigError(
                f"unknown series view preset '{preset}'; choose one of: auto, "
                f"{', '.join(SERIES_PRESETS)}"
            )
        spec = spec_with(SERIES_PRESETS[preset], cfg.views.series.model_dump())
        need = needs.min_length or 1
        longest = int(train.lengths.max())
        if longest < need:
            raise DataError(
                f"{train.name}: the longest series has {longest} step(s) but method '{cfg.method}' "
                f"crops at least {need}; give longer series or change the method's parameters "
                "(TS2Vec: lower params.temporal_unit)"
            )
        x64 = train.x.astype(np.float64)  # float32 sums and squares overflow near 1e38
        mean, std = np.nanmean(x64, axis=(0, 2)), np.nanstd(x64, axis=(0, 2))
        del x64
        return preset, {
            "in_channels": train.channels,
            "length": train.length,
            "preset": preset,
            "view_spec": asdict(spec),
            "mean": [float(m) for m in np.nan_to_num(mean)],
            "std": [float(max(s, 1e-6)) if np.isfinite(s) else 1.0 for s in std],
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.timeseries import SERIES_PRESETS, SeriesViews, SeriesViewSpec

        spec = (
            SeriesViewSpec(**meta["view_spec"])
            if "view_spec" in meta
            else SERIES_PRESETS[meta["preset"]]
        )
        return SeriesViews(spec, meta["std"], cfg.views.n_views, meta["mean"])

    def default_backbone(self, meta: dict) -> str:
        return "dilated"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.timeseries import build_series_backbone

        return build_series_backbone(
            self.default_backbone(meta) if name == "auto" else name,
            meta["in_channels"],
            model_cfg.width,
        )

    def to_tensor(self, data: SeriesData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        return x.float()

    def raw_features(self, data: SeriesData, meta: dict) -> Tensor:
        """The series standardised per channel, missing/padded steps 0, flattened (N, C * T)."""
        mean, std = self.normalisation(meta)
        return torch.nan_to_num((torch.from_numpy(data.x) - mean) / std, nan=0.0).flatten(1)


register(SeriesModality())

register_views("series", SeriesViewsConfig)
