"""Table encoders: standardised rows (N, F) in, features (N, D) out.

Categorical columns arrive as integer codes (the encoder's normalisation leaves them as they are:
mean 0, std 1) and are one-hot encoded here (``mlp``) or embedded (``ft_transformer``); code -1, a
category the training split never had, encodes as all zeros / a learned "unknown" embedding.

- ``mlp``: SCARF's encoder (Bahri et al. 2022: 4 fully connected layers of 256 with ReLU); the last
  layer is linear (no ReLU), so features have both signs (cosine scores to a mean stay informative).
  ``width`` scales the 256.
- ``residual_mlp``: CLAN's encoder (Wilkie et al. 2025; ``ContrastiveMLP`` in jackwilkie/CLAN
  ``model/model.py`` as ``train_clan.py`` builds it): 4 residual blocks of width 1024, each
  ``h + ReLU(W h + b)`` (the first block's skip is a linear map from the input width), then a linear
  projection to 64 dimensions, which is the output (the authors train and score that projection).
  ``width`` scales the 1024; the projection stays 64.
- ``ft_transformer``: a small feature-tokenising transformer (Gorishniy et al. 2021,
  FT-Transformer): one token per feature (numeric: ``x_j w_j + b_j``; categorical: an embedding), a
  [CLS] token, 2 pre-norm transformer blocks of width 32 (4 heads); the [CLS] output is the feature
  vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Columns(nn.Module):
    def __init__(self, cardinality: list[int]):
        super().__init__()
        self.cardinality = list(cardinality)
        self.num_idx = [j for j, k in enumerate(cardinality) if k == 0]
        self.cat_idx = [j for j, k in enumerate(cardinality) if k > 0]
        #: the width of :meth:`one_hot`'s output
        self.in_width = len(self.num_idx) + sum(cardinality[j] for j in self.cat_idx)

    def one_hot(self, x: Tensor) -> Tensor:
        """The numeric columns, then each categorical column one-hot (code -1: all zeros)."""
        parts = [x[:, self.num_idx]] if self.num_idx else []
        for j in self.cat_idx:
            code = x[:, j].round().long()
            k = self.cardinality[j]
            parts.append(
                F.one_hot(code.clamp(0, k - 1), k).to(x.dtype)
                * (code >= 0).unsqueeze(1).to(x.dtype)
            )
        return torch.cat(parts, dim=1)


class TableMLP(_Columns):
    def __init__(self, cardinality: list[int], hidden: int = 256, depth: int = 4):
        super().__init__(cardinality)
        d_in = self.in_width
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Linear(d_in if i == 0 else hidden, hidden))
            if i < depth - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.out_dim = hidden

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.one_hot(x))


class _ResidualBlock(nn.Module):
    """``skip(h) + ReLU(W h + b)``: ``skip`` is the identity at equal widths, else a linear map."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.skip: nn.Module = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)

    def forward(self, h: Tensor) -> Tensor:
        return self.skip(h) + torch.relu(self.linear(h))


class ResidualTableMLP(_Columns):
    """CLAN's encoder: ``depth`` residual blocks of ``hidden`` units, then a linear projection to
    ``proj_dim`` (the output, ``out_dim``); categorical columns one-hot as :class:`TableMLP`."""

    def __init__(
        self, cardinality: list[int], hidden: int = 1024, depth: int = 4, proj_dim: int = 64
    ):
        super().__init__(cardinality)
        blocks: list[nn.Module] = [
            _ResidualBlock(self.in_width if i == 0 else hidden, hidden) for i in range(depth)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Linear(hidden, proj_dim)
        self.out_dim = proj_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.blocks(self.one_hot(x)))


class FTTransformer(_Columns):
    def __init__(self, cardinality: list[int], dim: int = 32, depth: int = 2, heads: int = 4):
        super().__init__(cardinality)
        n_num = len(self.num_idx)
        self.w = nn.Parameter(torch.randn(n_num, dim) * dim**-0.5)
        self.b = nn.Parameter(torch.zeros(n_num, dim))
        # one table for every categorical column: offset + code + 1 (row 0 of each block = unknown)
        offsets, total = [], 0
        for j in self.cat_idx:
            offsets.append(total)
            total += cardinality[j] + 1
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        self.emb = nn.Embedding(max(total, 1), dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        tokens = [x[:, self.num_idx].unsqueeze(-1) * self.w + self.b] if self.num_idx else []
        if self.cat_idx:
            code = x[:, self.cat_idx].round().long().clamp_min(-1) + 1
            tokens.append(self.emb(code + self.offsets))
        h = torch.cat([self.cls.expand(len(x), -1, -1)] + tokens, dim=1)
        return self.norm(self.blocks(h)[:, 0])


TABLE_BACKBONES = {
    "mlp": lambda card, w: TableMLP(card, hidden=max(8, int(round(256 * w)))),
    "ft_transformer": lambda card, w: FTTransformer(card, dim=max(8, 4 * int(round(8 * w)))),
    "residual_mlp": lambda card, w: ResidualTableMLP(card, hidden=max(8, int(round(1024 * w)))),
}


def build_table_backbone(name: str, cardinality: list[int], width: float = 1.0) -> nn.Module:
    from ..errors import ConfigError

    if name not in TABLE_BACKBONES:
        raise ConfigError(
            f"unknown table backbone '{name}'; choose one of: auto, {', '.join(TABLE_BACKBONES)}"
        )
    return TABLE_BACKBONES[name](cardinality, width)
