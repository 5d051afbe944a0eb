"""Point clouds: float (N, 3, P) containers, point views, PointNet and the Point-MAE transformer.

Each cloud is centred and scaled into the unit ball when it is loaded
(:mod:`selfsup.data.points`); the encoder carries one scale for the three coordinates (the
training split's coordinate deviation), so a rotation of the input is a rotation of what the
backbone sees, and by default the backbone first turns each cloud into its principal-axis frame
(``views.points.align=pca``, kept in the encoder's metadata;
:func:`selfsup.models.points.canonical_pose`), so its features forget the pose; ``none`` keeps
the frame as given (encoders saved before the option existed).

Defaults where the user left them unset (:meth:`PointsModality.config_defaults`): the ``pointnet``
encoder (``point_transformer`` for the masked methods), the ``views.points`` augmentations,
AdamW at lr 1e-3, a batch of at most 32, epochs for about :data:`TARGET_STEPS` steps, and the
ModelNet-style SVM protocol on the frozen global features (``svm``: an RBF SVM with C
cross-validated, :mod:`selfsup.eval.svm`; the Point-MAE authors' LinearSVC is
``benchmarks/points_text.py --linear-svm``) beside kNN (k = 5) and linear. The raw-input
baseline is the D2 shape distribution (Osada et al. 2002): the histogram of distances between
random pairs of points of the cloud, invariant to rotation and order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data import DataOption, Source, register_builtin, register_option, register_source
from ..data.points import (
    DEFAULT_POINTS,
    PointsData,
    claims_folder,
    claims_npz,
    load_folder,
    load_npz,
    make_shapes,
)
from ..errors import DataError
from ..views.points import PointViewsConfig
from .base import EncoderMeta, Modality, register, step_budget

if TYPE_CHECKING:
    from ..methods.base import Capability, Needs

NAME = "points"
#: steps a default point-cloud run aims at (epochs derive from it and the training split's size)
TARGET_STEPS = 400
#: D2: pairs of points per cloud, and histogram bins over distances 0 .. 2 (the unit ball's span)
D2_PAIRS, D2_BINS = 4096, 32


class PointsMeta(EncoderMeta, total=False):
    """A point-cloud encoder's ``meta``: the points per cloud."""

    points: Required[int]
    mean: Required[list[float]]
    std: Required[list[float]]
    align: str


class PointsModality(Modality):
    name = NAME
    meta_type = PointsMeta
    input_ndim = 3
    input_layout = "(N, 3, P) float point clouds"
    views_fields = frozenset({NAME})

    def backbone_names(self) -> list[str]:
        from ..models.points import POINT_BACKBONES

        return list(POINT_BACKBONES)

    def check_input(self, data: PointsData) -> None:
        if data.points < 2:
            raise DataError(f"{data.name}: a cloud needs at least 2 points, got {data.points}")

    def config_defaults(self, cfg, train: PointsData) -> dict:
        return {
            "train": {
                **step_budget(len(train), 32, TARGET_STEPS),
            },
            "optim": {"lr": 1e-3},
            "eval": {"protocols": ["knn", "linear", "svm"], "knn_k": 5},
        }

    def input_meta(self, cfg, train: PointsData, needs: Needs):
        std = float(train.x.std()) or 1.0
        return NAME, {
            "in_channels": 3,
            "points": train.points,
            "preset": NAME,
            "mean": [0.0, 0.0, 0.0],
            "std": [std, std, std],
            "align": getattr(cfg.views, NAME).align,
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.points import PointViews

        return PointViews(getattr(cfg.views, NAME), cfg.views.n_views)

    def default_backbone(self, meta: dict) -> str:
        return "pointnet"

    def backbone_for(self, capability: Capability, meta: dict) -> str | None:
        return "point_transformer" if capability == "point_patches" else None

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.points import build_point_backbone

        return build_point_backbone(
            self.default_backbone(meta) if name == "auto" else name,
            model_cfg.width,
            int(meta.get("points", 1024)),
            # encoders saved before the option existed saw their clouds as given
            str(meta.get("align", "none")),
        )

    def to_tensor(self, data: PointsData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        return x.float()

    def raw_features(self, data: PointsData, meta: dict) -> Tensor:
        """The D2 shape distribution: a histogram of :data:`D2_BINS` bins of the distances between
        :data:`D2_PAIRS` random pairs of points (the same pairs for every cloud), as densities."""
        return d2_histogram(data.x)


def d2_histogram(x: np.ndarray, pairs: int = D2_PAIRS, bins: int = D2_BINS) -> Tensor:
    """D2 features of clouds (N, 3, P) scaled into the unit ball: (N, bins) float32."""
    p = x.shape[2]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, p, pairs), rng.integers(0, p, pairs)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    d = (t[:, :, i] - t[:, :, j]).norm(dim=1)  # (N, pairs)
    idx = (d / 2 * bins).long().clamp(0, bins - 1)
    h = torch.zeros(len(t), bins).scatter_add_(1, idx, torch.ones_like(d))
    return h * (bins / pairs)


_SHAPES: dict[str, object] = {}


def _shapes(pose: str = "so3"):
    """The built-in ``shapes`` or ``shapes:aligned`` (each made once per process)."""
    if pose not in _SHAPES:
        _SHAPES[pose] = make_shapes(pose=pose)
    return _SHAPES[pose]


def _points_option(options: dict) -> int:
    v = options.get("points", DEFAULT_POINTS)
    try:
        n = int(v)
    except (TypeError, ValueError):
        n = 0
    if n < 16 or str(v).strip() != str(n):
        raise DataError(f"--points must be a whole number of at least 16, got '{v}'")
    return n


def _load_folder(spec: str, options: dict | None = None, **_) -> object:
    from pathlib import Path

    return load_folder(Path(spec).expanduser(), _points_option(options or {}))


def _load_npz(spec: str, options: dict | None = None, **_) -> object:
    from pathlib import Path

    return load_npz(Path(spec).expanduser())


register(PointsModality())
register_views(NAME, PointViewsConfig)
register_builtin("shapes", _shapes)
register_builtin("shapes:aligned", lambda: _shapes("aligned"))
register_option(
    DataOption(
        "points",
        f"point clouds: points sampled on each mesh, or kept of each point file (default "
        f"{DEFAULT_POINTS})",
        metavar="N",
    )
)
register_source(Source("point-folder", claims_folder, _load_folder))
register_source(Source("point-npz", claims_npz, _load_npz))
