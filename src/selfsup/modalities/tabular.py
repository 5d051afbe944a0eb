"""Tables: float (N, F) containers (categorical columns as codes), table views (SCARF, VIME, CLAN,
noise) and MLP / feature-tokenising transformer encoders.

The encoder carries the numeric columns' mean and standard deviation on the training split
(categorical columns: 0 and 1, so their codes pass through) and the meta records the column names
and category vocabularies, so a saved encoder encodes new rows the same way
(:func:`selfsup.data.table.encode_table`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data.base import TableData
from ..errors import ConfigError
from ..views.tabular import TableViewsConfig
from .base import EncoderMeta, Modality, register

if TYPE_CHECKING:
    from ..methods.base import Needs


class TableMeta(EncoderMeta, total=False):
    """A table encoder's ``meta``: the training columns, the categories of each categorical
    column and their counts (0 for a numeric column)."""

    in_channels: Required[int]
    columns: Required[list[str]]
    categories: dict[str, list[Any]]
    cardinality: list[int]
    mean: Required[list[float]]
    std: Required[list[float]]


class TableModality(Modality):
    name = "table"
    meta_type = TableMeta
    views_fields = frozenset({"table"})
    input_layout = "(N, F) float rows"
    input_channels_dim = False
    input_ndim = 2

    def input_meta(self, cfg, train: TableData, needs: Needs):
        from dataclasses import asdict, replace

        from ..views.tabular import TABLE_PRESETS

        preset = cfg.views.preset
        if preset == "auto":
            preset = needs.view_preset if needs.view_preset in TABLE_PRESETS else "scarf"
        if preset not in TABLE_PRESETS:
            raise ConfigError(
                f"unknown table view preset '{preset}'; choose one of: auto, "
                f"{', '.join(TABLE_PRESETS)}"
            )
        spec = TABLE_PRESETS[preset]
        if cfg.views.table.corruption is not None:
            spec = replace(spec, p=cfg.views.table.corruption)
        cats = train.categories
        card = [len(cats[c]) if c in cats else 0 for c in train.columns]
        x = train.x.astype(np.float64)
        mean, std = x.mean(0), x.std(0)
        is_cat = np.array(card) > 0
        mean = np.where(is_cat, 0.0, mean)
        std = np.where(
            is_cat | (std < 1e-6), 1.0, std
        )  # a constant column: centred only (as scikit-learn)
        return preset, {
            "in_channels": train.channels,
            "columns": list(train.columns),
            "categories": {k: list(v) for k, v in cats.items()},
            "cardinality": card,
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
            "preset": preset,
            "view_spec": asdict(spec),
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.tabular import TableViews, TableViewSpec

        spec = TableViewSpec(**meta["view_spec"])
        return TableViews(spec, meta["mean"], meta["std"], meta["cardinality"], cfg.views.n_views)

    def backbone_names(self) -> list[str]:
        from ..models.tabular import TABLE_BACKBONES

        return list(TABLE_BACKBONES)

    def default_backbone(self, meta: dict) -> str:
        return "mlp"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.tabular import build_table_backbone

        return build_table_backbone(
            self.default_backbone(meta) if name == "auto" else name,
            meta["cardinality"],
            model_cfg.width,
        )

    def to_tensor(self, data: TableData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        return x.float()

    def raw_features(self, data: TableData, meta: dict) -> Tensor:
        """Numeric columns standardised by the training statistics, categorical ones one-hot."""
        x = torch.from_numpy(data.x).float()
        parts = []
        for j, k in enumerate(meta["cardinality"]):
            if k == 0:
                parts.append(((x[:, j] - meta["mean"][j]) / meta["std"][j]).unsqueeze(1))
            else:
                code = x[:, j].round().long()
                parts.append(
                    torch.nn.functional.one_hot(code.clamp(0, k - 1), k).float()
                    * (code >= 0).unsqueeze(1).float()
                )
        return torch.cat(parts, dim=1)

    def check_eval_data(self, data, meta: dict) -> None:
        super().check_eval_data(data, meta)
        from ..errors import DataError

        if list(data.columns) != list(meta["columns"]):
            raise DataError(
                f"evaluation data '{data.name}' has columns {', '.join(data.columns[:8])} but the "
                f"encoder takes {', '.join(meta['columns'][:8])}; give a table "
                "with the same columns"
            )


register(TableModality())

register_views("table", TableViewsConfig, former=("corruption",))
