"""A modality selfsup does not ship, defined here through the public registries: sets of 2-D points.

Run it as ``python examples/custom_modality.py OUT_DIR``: it trains SimCLR on the built-in
``pointsets`` (shapes drawn as point clouds) once through the Python API (``OUT_DIR/api``) and once
through the command line with ``--plugin examples/custom_modality.py`` (``OUT_DIR/cli``), and each
run's ``summary.json`` holds kNN and linear accuracy beside the random-init and raw-input baselines.

What a modality is (see ``docs/architecture.md``, "Adding a modality"):

- a sample container (:class:`selfsup.data.base.Samples`) with its own input checks,
- a source or a built-in data set (:func:`selfsup.data.register_builtin`, ``register_source``),
- a view maker (an ``nn.Module`` mapping a raw batch to ``n_views`` views, on the device) and its
  parameters as a ``views`` section of the config (:func:`selfsup.config.register_views`),
- a backbone (any module with ``out_dim``), a raw-input baseline and its evaluation defaults,
- the :class:`selfsup.modalities.Modality` that ties them together, registered by name.

No file of selfsup changes: the methods, the training loop, evaluation and the run directory
are the same for every modality.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from selfsup.config import register_views
from selfsup.data import Splits, register_builtin
from selfsup.data.base import Samples
from selfsup.errors import DataError
from selfsup.modalities import Modality, register
from selfsup.modalities.base import EncoderMeta

NAME = "pointset"
#: a short run: this example is a proof of the seam (it runs in the test suite), not a benchmark
EPOCHS = 8


# -- the container ---------------------------------------------------------------------------
@dataclass
class PointSetData(Samples):
    """Sets of 2-D points as float32 (N, 2, P): coordinates first, then the P points of a set."""

    modality: ClassVar[str] = NAME

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[1] != 2 or x.shape[2] == 0:
            raise DataError(
                f"{self.name}: point sets must be an array of shape (N, 2, P), got "
                f"{getattr(x, 'shape', type(x).__name__)}"
            )
        if len(x) == 0:
            raise DataError(f"{self.name}: the dataset is empty; give at least one point set")
        self.x = np.ascontiguousarray(x, dtype=np.float32)

    @property
    def channels(self) -> int:
        return 2


# -- a built-in data set ---------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle", "cross")


def _shape(kind: str, t: np.ndarray) -> np.ndarray:
    """Points along the outline of ``kind`` at positions ``t`` in [0, 1)."""
    if kind == "circle":
        a = 2 * math.pi * t
        return np.stack([np.cos(a), np.sin(a)])
    if kind == "cross":
        s = np.where(t < 0.5, 4 * t - 1, 4 * (t - 0.5) - 1)
        return np.where(t < 0.5, np.stack([s, np.zeros_like(s)]), np.stack([np.zeros_like(s), s]))
    corners = 4 if kind == "square" else 3
    a0 = 2 * math.pi * np.arange(corners + 1) / corners + math.pi / 4
    poly = np.stack([np.cos(a0), np.sin(a0)], 1)
    side = np.minimum((t * corners).astype(int), corners - 1)
    f = (t * corners - side)[:, None]
    return ((1 - f) * poly[side] + f * poly[side + 1]).T


def make_pointsets(n: int = 600, points: int = 32, seed: int = 0) -> Splits:
    """Shapes with a random rotation, scale, shift and noise; 75% train / 25% test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(SHAPES), n)
    x = np.empty((n, 2, points), np.float32)
    for i, k in enumerate(y):
        p = _shape(SHAPES[k], rng.random(points))
        a = rng.uniform(0, 2 * math.pi)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        p = rng.uniform(0.5, 1.5) * rot @ p + rng.normal(0, 0.5, (2, 1))
        x[i] = p + rng.normal(0, 0.03, p.shape)
    cut = n * 3 // 4
    classes = list(SHAPES)
    return Splits(
        PointSetData(x[:cut], y[:cut], classes, "pointsets/train"),
        PointSetData(x[cut:], y[cut:], classes, "pointsets/test"),
    )


# -- views and their config section ----------------------------------------------------------
class PointSetViewsConfig(BaseModel):
    """``views.pointset``: the view maker's parameters (``--set views.pointset.jitter=0.05``)."""

    model_config = ConfigDict(extra="forbid")
    rotate: bool = True
    scale: tuple[float, float] = (0.7, 1.3)
    jitter: float = Field(default=0.03, ge=0)
    keep: float = Field(default=0.75, gt=0, le=1)
    """Fraction of the points each view keeps (a random subset, resampled to the full size)."""


class PointSetViews(nn.Module):
    """Batched views of (B, 2, P) point sets: random rotation, scale, subset and jitter."""

    def __init__(self, spec: PointSetViewsConfig, n_views: int) -> None:
        super().__init__()
        self.spec, self.n_views = spec, n_views

    def one(self, x: Tensor) -> Tensor:
        s, (b, _, p) = self.spec, x.shape
        keep = max(1, int(round(s.keep * p)))
        idx = torch.rand(b, p, device=x.device).argsort(1)[:, :keep]
        idx = idx.gather(1, torch.randint(0, keep, (b, p), device=x.device))
        x = x.gather(2, idx[:, None].expand(b, 2, p))
        a = torch.rand(b, device=x.device) * 2 * math.pi if s.rotate else torch.zeros(b)
        rot = torch.stack([a.cos(), -a.sin(), a.sin(), a.cos()], 1).view(b, 2, 2)
        lo, hi = s.scale
        k = lo + (hi - lo) * torch.rand(b, 1, 1, device=x.device)
        centre = x.mean(2, keepdim=True)
        return k * rot @ (x - centre) + centre + s.jitter * torch.randn_like(x)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.one(x) for _ in range(self.n_views)]


# -- the encoder -----------------------------------------------------------------------------
class PointNet(nn.Module):
    """A shared per-point MLP, then max and mean pooling over the set (order-invariant)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        w = int(64 * width)
        self.point = nn.Sequential(
            nn.Conv1d(2, w, 1), nn.BatchNorm1d(w), nn.ReLU(),
            nn.Conv1d(w, 2 * w, 1), nn.BatchNorm1d(2 * w), nn.ReLU(),
            nn.Conv1d(2 * w, 2 * w, 1),
        )  # fmt: skip
        self.out_dim = 4 * w

    def forward(self, x: Tensor) -> Tensor:
        h = self.point(x - x.mean(2, keepdim=True))  # translation-invariant input
        return torch.cat([h.amax(2), h.mean(2)], 1)


# -- the modality ----------------------------------------------------------------------------
class PointSetMeta(EncoderMeta, total=False):
    """What the saved encoder records (``input_meta`` below); checked on save and on load."""

    points: int
    in_channels: int
    mean: list[float]
    std: list[float]


class PointSetModality(Modality):
    name = NAME
    meta_type = PointSetMeta
    input_ndim = 3  # (N, 2, P)
    views_fields = frozenset({NAME})

    def check_input(self, data: PointSetData) -> None:
        if not np.isfinite(data.x).all():
            raise DataError(f"{data.name}: point sets hold NaN or infinite coordinates; drop them")

    def config_defaults(self, cfg, train) -> dict:
        return {"train": {"batch_size": 64, "epochs": EPOCHS}, "optim": {"lr": 2e-3}}

    def input_meta(self, cfg, train: PointSetData, needs):
        scale = float(np.linalg.norm(train.x - train.x.mean(2, keepdims=True), axis=1).mean())
        return "pointset", {
            "in_channels": 2,
            "points": int(train.x.shape[2]),
            "mean": [0.0, 0.0],
            "std": [scale, scale],
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        return PointSetViews(getattr(cfg.views, NAME), cfg.views.n_views)

    def backbone_names(self) -> list[str]:
        return ["pointnet"]

    def default_backbone(self, meta: dict) -> str:
        return "pointnet"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        return PointNet(model_cfg.width)

    def to_tensor(self, data: PointSetData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        return x.float()

    def raw_features(self, data: PointSetData, meta: dict) -> Tensor:
        """Centred coordinates sorted by angle around the centre, flattened and standardised."""
        x = data.x - data.x.mean(2, keepdims=True)
        order = np.argsort(np.arctan2(x[:, 1], x[:, 0]), axis=1)
        f = np.take_along_axis(x, order[:, None], 2).reshape(len(x), -1)
        f = (f - f.mean(0)) / (f.std(0) + 1e-6)
        return torch.from_numpy(f.astype(np.float32))


register(PointSetModality())
register_views(NAME, PointSetViewsConfig)
register_builtin("pointsets", make_pointsets)


# -- training it with an existing method, twice ----------------------------------------------
def main(out: Path) -> None:
    import json

    import selfsup

    settings = dict(method="simclr", data="pointsets", epochs=EPOCHS, seed=0)
    run = selfsup.train(out=out / "api", overwrite=True, plugins=[__file__], **settings)
    subprocess.run(
        [sys.executable, "-m", "selfsup", "train", "--plugin", __file__, "--data", "pointsets",
         "--epochs", str(EPOCHS), "--seed", "0", "--out", str(out / "cli"), "--overwrite"],
        check=True,
    )  # fmt: skip
    for name in ("api", "cli"):
        s = json.loads((out / name / "summary.json").read_text())
        rows = {"pretrained": s["eval"], **s["baselines"]}
        print(name, {k: round(v["knn_top1"], 3) for k, v in rows.items()})
    print(f"runs: {out / 'api'} (Python API), {out / 'cli'} (command line); {run.dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/custom_modality.py OUT_DIR")
    main(Path(sys.argv[1]))
