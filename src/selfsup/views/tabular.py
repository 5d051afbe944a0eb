"""Batched table views made on the training device: float (N, F) rows in, ``n_views`` views out.

Rows are in the data's own units with categorical columns as integer codes (see
:class:`~selfsup.data.base.TableData`); every view keeps that layout, so a categorical column only
ever holds a valid code. Random under torch's global generator, which the trainer seeds and
checkpoints.

Presets (``--set views.preset=NAME``; the fraction by ``--set views.table.corruption=P``). In the
corrupting presets view 0 is the row itself (the anchor) and the other views are corrupted copies:

- ``scarf`` (Bahri et al. 2022, SCARF): in each row a random subset of ``round(0.6 F)`` features
  is replaced by draws from each feature's empirical marginal, i.e. the value of that feature in a
  uniformly drawn row of the training split.
- ``vime`` (Yoon et al. 2020, VIME; ``pretext_generator`` in jsyoon0823/VIME): each cell is masked
  with probability 0.3 and imputed from the feature's empirical marginal (the authors shuffle each
  column over the training set, which is the same draw).
- ``clan`` (Wilkie et al. 2025, CLAN; ``uniform_resample`` in jackwilkie/CLAN
  ``loss/augmentations.py`` with the defaults of ``train_clan.py`` at commit 680ab61): each cell
  with probability 0.1 is replaced by a uniform draw in [-1.7, 1.7] standard deviations around the
  feature's mean (the authors resample standardised features; their earlier script used 1.5); a
  categorical cell by a uniformly drawn category.
- ``noise``: every view adds Gaussian noise of 0.1 standard deviations to the numeric columns.
- ``none``: the rows unchanged.

The empirical marginals are those of the training split: :meth:`TableViews.fit` keeps the training
rows (the run calls it once with its training tensor); before it, a batch's own rows are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn


@dataclass(frozen=True)
class TableViewSpec:
    kind: str = "scarf"
    """``scarf`` (fixed-size subset from the marginals), ``vime`` (Bernoulli mask, marginals),
    ``clan`` (Bernoulli mask, uniform in the standardised range), ``noise`` or ``none``."""
    p: float = 0.6
    """The fraction of features corrupted (scarf: per row exactly round(p F); vime/clan: per
    cell)."""
    noise: float = 0.1
    """``noise``: standard deviation in units of each feature's standard deviation."""
    uniform: float = 1.7
    """``clan``: half-width of the uniform draw, in standard deviations (the authors' 1.7)."""
    anchor: bool = True
    """View 0 is the unchanged row (the corrupting presets)."""


TABLE_PRESETS = {
    "scarf": TableViewSpec("scarf", 0.6),
    "vime": TableViewSpec("vime", 0.3),
    "clan": TableViewSpec("clan", 0.1, uniform=1.7),
    "noise": TableViewSpec("noise", 0.0, anchor=False),
    "none": TableViewSpec("none", 0.0, anchor=False),
}


def scarf_corrupt(x: Tensor, pool: Tensor, p: float) -> Tensor:
    """SCARF: in each row exactly ``round(p F)`` features (a uniform random subset) take the value
    of the same feature in a uniformly drawn row of ``pool``."""
    n, f = x.shape
    q = int(round(p * f))
    if q == 0:
        return x.clone()
    order = torch.rand(n, f, device=x.device).argsort(dim=1)
    mask = torch.zeros(n, f, dtype=torch.bool, device=x.device)
    mask.scatter_(1, order[:, :q], True)
    return torch.where(mask, marginal_draws(pool, n), x)


def vime_corrupt(x: Tensor, pool: Tensor, p: float) -> tuple[Tensor, Tensor]:
    """VIME mask-and-impute: ``m ~ Bernoulli(p)`` per cell, ``x~ = (1 - m) x + m x_bar`` with
    ``x_bar`` drawn from each feature's marginal; returns ``(x~, x~ != x)`` (the authors' target
    mask counts only cells whose value changed)."""
    m = torch.rand(x.shape, device=x.device) < p
    xt = torch.where(m, marginal_draws(pool, x.shape[0]), x)
    return xt, xt != x


def clan_resample(
    x: Tensor, mean: Tensor, std: Tensor, p: float, half_width: float, cardinality: Tensor
) -> Tensor:
    """CLAN: each cell with probability ``p`` becomes ``mean + std * U(-half_width, half_width)``;
    a categorical cell (``cardinality > 0``) a uniformly drawn code in ``[0, cardinality)``."""
    m = torch.rand(x.shape, device=x.device) < p
    u = mean + std * (torch.rand(x.shape, device=x.device) * 2 - 1) * half_width
    cat = cardinality > 0
    if bool(cat.any()):
        codes = torch.floor(torch.rand(x.shape, device=x.device) * cardinality.clamp_min(1))
        u = torch.where(cat, codes, u)
    return torch.where(m, u, x)


def marginal_draws(pool: Tensor, n: int) -> Tensor:
    """(n, F): cell (i, j) is ``pool[r_ij, j]`` for independent uniform row indices ``r_ij``."""
    idx = torch.randint(len(pool), (n, pool.shape[1]), device=pool.device)
    return pool.gather(0, idx)


class TableViews(nn.Module):
    """``n_views`` views of a batch of rows (N, F); see the module docstring for the presets.

    ``mean``/``std``: each column's statistics on the training split (categorical columns: 0/1);
    ``cardinality``: the number of categories of each categorical column, 0 for numeric ones.
    """

    def __init__(
        self,
        spec: TableViewSpec,
        mean: list[float],
        std: list[float],
        cardinality: list[int],
        n_views: int = 2,
    ):
        super().__init__()
        self.spec, self.n_views = spec, n_views
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1))
        self.register_buffer(
            "cardinality", torch.tensor(cardinality, dtype=torch.float32).view(1, -1)
        )
        self.register_buffer("pool", torch.empty(0), persistent=False)

    def fit(self, x: Tensor) -> TableViews:
        """Keep the training rows: the empirical marginals the corruptions draw from."""
        self.pool = x.detach().float().to(self.mean.device)
        return self

    def one(self, x: Tensor) -> Tensor:
        s = self.spec
        pool = self.pool if self.pool.numel() else x
        if s.kind == "scarf":
            return scarf_corrupt(x, pool, s.p)
        if s.kind == "vime":
            return vime_corrupt(x, pool, s.p)[0]
        if s.kind == "clan":
            return clan_resample(x, self.mean, self.std, s.p, s.uniform, self.cardinality)
        if s.kind == "noise" and s.noise:
            num = (self.cardinality == 0).to(x.dtype)
            return x + s.noise * self.std * num * torch.randn_like(x)
        return x.clone()

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x.float()
        first = [x] if self.spec.anchor else []
        return first + [self.one(x) for _ in range(self.n_views - len(first))]


class TableViewsConfig(BaseModel):
    """``views.table``: a field set here replaces the preset's."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    corruption: float | None = Field(default=None, ge=0, le=1)
    """The fraction of features a view corrupts (default: the preset's; SCARF 0.6, VIME 0.3,
    CLAN 0.1). Formerly ``views.corruption``, still read."""
