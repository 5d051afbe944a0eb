"""Point clouds: float32 (N, 3, P) containers, their sources, and the built-in ``shapes``.

Sources (each cloud is centred on its mean and scaled into the unit ball, the usual ModelNet
normalisation, when it is loaded):

- a folder ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (or ``ROOT/<class>/*``, split
  once, stratified 80/20) of meshes (``.off``, ``.ply``, ``.obj``, ``.stl``; read with ``trimesh``,
  the ``points`` extra; ``P`` points drawn on the surface, area-weighted) or point files (``.xyz`` /
  ``.pts`` text with three numbers a line, ``.npy`` (P', 3)). ``P`` is ``--points`` (default
  :data:`DEFAULT_POINTS`); a point file with more points is subsampled (seeded), one with fewer is
  skipped and counted, as are unreadable or degenerate files (no area, NaN coordinates): one
  warning line per split, or an error when nothing is left;
- an ``.npz`` with ``kind="points"``, ``x`` (N, P, 3) and optional ``y`` (N,) (and ``x_test`` /
  ``y_test``). The marker key is required: a float (N, P, 3) array is otherwise a series of P
  channels (:mod:`selfsup.data.npz`), so no existing kind of ``.npz`` changes meaning;
- ``shapes``: procedural primitives (sphere, box, cylinder, cone, torus, pyramid, octahedron,
  capsule) with random proportions and a random pose in SO(3), 256 points sampled on each surface
  (1200 training and 400 test clouds, balanced).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError, DataWarning
from .base import Samples, Splits, stratified_split

#: points per cloud a mesh is sampled at (and point files are subsampled to) by default
DEFAULT_POINTS = 1024
MESH_SUFFIXES = (".off", ".ply", ".obj", ".stl")
POINT_SUFFIXES = (".xyz", ".pts", ".npy")
SHAPES = ("sphere", "box", "cylinder", "cone", "torus", "pyramid", "octahedron", "capsule")


@dataclass
class PointsData(Samples):
    """Point clouds as float32 (N, 3, P): the three coordinates, then the P points of a cloud."""

    modality: ClassVar[str] = "points"

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[1] != 3:
            raise DataError(
                f"{self.name}: point clouds must be an array of shape (N, 3, P), got "
                f"{getattr(x, 'shape', type(x).__name__)}"
            )
        if len(x) == 0 or x.shape[2] == 0:
            raise DataError(f"{self.name}: no point clouds (shape {tuple(x.shape)})")
        if x.dtype.kind not in "fiu":
            raise DataError(f"{self.name}: coordinates must be numbers, got {x.dtype}")
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(self.x).all():
            raise DataError(
                f"{self.name}: point clouds hold NaN or infinite coordinates; drop those clouds"
            )

    @property
    def channels(self) -> int:
        return 3

    @property
    def points(self) -> int:
        return int(self.x.shape[2])


def normalise(p: np.ndarray) -> np.ndarray:
    """(P, 3) points centred on their mean and scaled so the farthest point is at radius 1."""
    p = p - p.mean(0)
    r = float(np.sqrt((p**2).sum(1)).max())
    return p / r if r > 0 else p


def sample_surface(v: np.ndarray, f: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points drawn uniformly on the surface of the triangle mesh (vertices ``v`` (V, 3),
    faces ``f`` (F, 3)): a face with probability proportional to its area, then a uniform point of
    it. Raises ValueError for a mesh with no area."""
    tri = v[f]  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = float(area.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the mesh has no surface area")
    face = rng.choice(len(f), size=n, p=area / total)
    a, b = rng.random((2, n, 1))
    flip = a + b > 1  # fold the unit square onto the triangle
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    t = tri[face]
    return t[:, 0] + a * (t[:, 1] - t[:, 0]) + b * (t[:, 2] - t[:, 0])


# -- the built-in shapes ------------------------------------------------------------------------
def _grid(fn, nu: int, nv: int, wrap_u: bool, wrap_v: bool) -> tuple[np.ndarray, np.ndarray]:
    """A triangle mesh of the parametric surface ``fn(u, v)`` over [0, 1]^2."""
    u = np.linspace(0, 1, nu, endpoint=not wrap_u)
    v = np.linspace(0, 1, nv, endpoint=not wrap_v)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    verts = fn(uu.ravel(), vv.ravel())
    iu, iv = np.arange(nu if wrap_u else nu - 1), np.arange(nv if wrap_v else nv - 1)
    a, b = np.meshgrid(iu, iv, indexing="ij")
    a, b = a.ravel(), b.ravel()
    a1, b1 = (a + 1) % nu, (b + 1) % nv
    i00, i10, i01, i11 = a * nv + b, a1 * nv + b, a * nv + b1, a1 * nv + b1
    faces = np.concatenate([np.stack([i00, i10, i11], 1), np.stack([i00, i11, i01], 1)])
    return verts, faces


def merge_meshes(*meshes: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One mesh (vertices, faces) of several, the faces' vertex indices offset."""
    vs, fs, off = [], [], 0
    for v, f in meshes:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def _revolve(profile, nu: int = 48, nv: int = 24, close: bool = False):
    """The surface of revolution of ``profile(v) -> (radius, height)`` about the z axis."""

    def fn(u, v):
        r, h = profile(v)
        a = 2 * math.pi * u
        return np.stack([r * np.cos(a), r * np.sin(a), h], 1)

    return _grid(fn, nu, nv, True, close)


def _disk(r: float, z: float):
    return _revolve(lambda v: (r * v, np.full_like(v, z)), nv=8)


def _polyhedron(v: np.ndarray, f: list[list[int]]):
    return v.astype(np.float64), np.asarray(f, dtype=np.int64)


def shape_mesh(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The mesh of one primitive of ``kind`` with random proportions (before its pose)."""
    u = rng.uniform
    if kind == "sphere":
        return _revolve(lambda v: (np.sin(math.pi * v), -np.cos(math.pi * v)))
    if kind == "box":
        s = u(0.5, 1.5, 3)
        c = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)]) * s
        quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
        return _polyhedron(
            c, [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
        )
    if kind == "cylinder":
        r, h = u(0.4, 1.0), u(0.8, 2.0)
        side = _revolve(lambda v: (np.full_like(v, r), h * (v - 0.5)), close=False)
        return merge_meshes(side, _disk(r, -h / 2), _disk(r, h / 2))
    if kind == "cone":
        r, h = u(0.5, 1.0), u(0.8, 2.0)
        side = _revolve(lambda v: (r * (1 - v), h * v), close=False)
        return merge_meshes(side, _disk(r, 0.0))
    if kind == "torus":
        big, small = 1.0, u(0.2, 0.45)

        def fn(a, b):
            a, b = 2 * math.pi * a, 2 * math.pi * b
            rr = big + small * np.cos(b)
            return np.stack([rr * np.cos(a), rr * np.sin(a), small * np.sin(b)], 1)

        return _grid(fn, 48, 24, True, True)
    if kind == "pyramid":
        w, d, h = u(0.6, 1.4), u(0.6, 1.4), u(0.8, 2.0)
        v = np.array([[-w, -d, 0], [w, -d, 0], [w, d, 0], [-w, d, 0], [0, 0, h]])
        return _polyhedron(v, [[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    if kind == "octahedron":
        a, b, c = u(0.6, 1.4, 3)
        v = np.array([[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]])
        f = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
        return _polyhedron(v, f)
    if kind == "capsule":
        r, h = u(0.3, 0.6), u(0.6, 1.6)

        def profile(v):  # a hemisphere, the side, a hemisphere, by arc length
            t = v * math.pi
            return (r * np.sin(t), np.where(v < 0.5, -h / 2, h / 2) - r * np.cos(t))

        return _revolve(profile, nv=33)
    raise ValueError(f"unknown shape '{kind}'")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3) (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def make_shapes(
    n_train: int = 1200, n_test: int = 400, points: int = 256, seed: int = 0, pose: str = "so3"
) -> Splits:
    """The built-in ``shapes``: the primitives of :data:`SHAPES`, balanced, each with random
    proportions, a random pose in SO(3) and surface noise (sigma 0.01), ``points`` points each.
    ``pose="aligned"`` (``shapes:aligned``) leaves every shape in its canonical pose, as ShapeNet
    and ModelNet are; the same seed gives the same shapes, proportions and noise, not rotated."""
    if pose not in ("so3", "aligned"):
        raise ValueError(f"pose must be 'so3' or 'aligned', got {pose!r}")
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % len(SHAPES)
    rng.shuffle(y)
    x = np.empty((n, 3, points), np.float32)
    for i, k in enumerate(y):
        v, f = shape_mesh(SHAPES[k], rng)
        p = sample_surface(v, f, points, rng)
        rot = random_rotation(rng)  # drawn in both poses, so that they share every other draw
        p = p @ rot.T if pose == "so3" else p
        x[i] = normalise(p + rng.normal(0, 0.01, p.shape)).T
    classes = list(SHAPES)
    name = "shapes" if pose == "so3" else "shapes:aligned"
    return Splits(
        PointsData(x[:n_train], y[:n_train], classes, f"{name}/train"),
        PointsData(x[n_train:], y[n_train:], classes, f"{name}/test"),
    )


# -- files -------------------------------------------------------------------------------------
def read_cloud(path: Path, points: int, rng: np.random.Generator) -> np.ndarray:
    """One file as a normalised (points, 3) cloud; ValueError says what is wrong with it."""
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        try:
            import trimesh
        except ImportError:
            raise DataError(
                "reading meshes needs trimesh; install the points extra (pip install "
                "'selfsup[points]') or give point files (.xyz, .pts, .npy)"
            ) from None
        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
        except Exception as err:  # noqa: BLE001  (trimesh raises many kinds)
            raise ValueError(f"unreadable mesh ({type(err).__name__})") from None
        v = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
        f = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
        if len(f) == 0 or len(v) == 0:
            raise ValueError("the mesh has no faces")
        if not np.isfinite(v).all():
            raise ValueError("NaN or infinite vertex coordinates")
        p = sample_surface(v, f, points, rng)
    else:
        try:
            if suffix == ".npy":
                p = np.load(path, allow_pickle=False)
            else:
                p = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#")
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"unreadable ({type(err).__name__})") from None
        if p.ndim != 2 or p.shape[1] < 3 or p.dtype.kind not in "fiu":
            raise ValueError(f"expected (P, 3) coordinates, got shape {tuple(p.shape)}")
        p = p[:, :3].astype(np.float64)
        if not np.isfinite(p).all():
            raise ValueError("NaN or infinite coordinates")
        if len(p) < points:
            raise ValueError(f"{len(p)} points, fewer than the {points} asked (--points)")
        if len(p) > points:
            p = p[np.sort(rng.choice(len(p), points, replace=False))]
    if float(np.ptp(p, axis=0).max()) <= 0:
        raise ValueError("every point is the same (a degenerate cloud)")
    return normalise(p)


def _files(root: Path) -> tuple[list[Path], list[str]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = []
    for c in classes:
        files += sorted(
            p for p in (root / c).iterdir() if p.suffix.lower() in MESH_SUFFIXES + POINT_SUFFIXES
        )
    return files, classes


def _load_split(root: Path, classes: list[str], points: int, name: str) -> PointsData:
    files = [
        p
        for c in classes
        if (root / c).is_dir()
        for p in sorted((root / c).iterdir())
        if p.suffix.lower() in MESH_SUFFIXES + POINT_SUFFIXES
    ]
    rng = np.random.default_rng(0)
    xs, ys, ids, skipped = [], [], [], []
    for p in files:
        try:
            xs.append(read_cloud(p, points, rng).T.astype(np.float32))
        except ValueError as err:
            skipped.append(f"{p.relative_to(root)}: {err}")
            continue
        ys.append(classes.index(p.parent.name))
        ids.append(str(p.relative_to(root)))
    if not xs:
        why = f" (e.g. {skipped[0]})" if skipped else ""
        raise DataError(
            f"'{root}' holds no readable point cloud{why}; put meshes (.off .ply .obj .stl) or "
            "point files (.xyz .pts .npy) in <class>/ folders"
        )
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} file(s), e.g. {skipped[0]}", DataWarning, stacklevel=4
        )
    info = {"ids": ids, "skipped": len(skipped), "skipped_files": skipped[:10]}
    return PointsData(np.stack(xs), np.asarray(ys), list(classes), name, info)


def claims_folder(spec: str, path: Path) -> bool:
    """A folder whose class folders (under ``train/`` or directly) hold mesh or point files."""
    if not path.is_dir():
        return False
    roots = [path / "train"] if (path / "train").is_dir() else [path]
    for r in roots:
        for c in r.iterdir():
            if c.is_dir() and any(
                p.suffix.lower() in MESH_SUFFIXES + POINT_SUFFIXES for p in c.iterdir()
            ):
                return True
    return False


def load_folder(path: Path, points: int) -> Splits:
    """``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*``, or ``ROOT/<class>/*`` split 80/20."""
    if (path / "train").is_dir():
        _, classes = _files(path / "train")
        train = _load_split(path / "train", classes, points, f"{path.name}/train")
        test = None
        if (path / "test").is_dir():
            extra = sorted(
                set(d.name for d in (path / "test").iterdir() if d.is_dir()) - set(classes)
            )
            if extra:
                raise DataError(
                    f"'{path}/test' has class folder(s) {', '.join(extra)} that train/ lacks; "
                    "give the same classes in both splits"
                )
            test = _load_split(path / "test", classes, points, f"{path.name}/test")
        return Splits(train, test)
    _, classes = _files(path)
    d = _load_split(path, classes, points, path.name)
    a, b = stratified_split(d.y, 0.2, 0)  # type: ignore[arg-type]
    return Splits(d.subset(a, d.name + "[80%]"), d.subset(b, d.name + "[20%]"))


def claims_npz(spec: str, path: Path) -> bool:
    """An ``.npz`` holding ``kind="points"`` (the marker; see the module docstring)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "kind" in z.files and str(z["kind"]) == "points"
    except Exception:  # noqa: BLE001  anything unreadable is left to the plain .npz loader
        return False


def load_npz(path: Path) -> Splits:
    """``x`` (N, P, 3) float and optional ``y``, ``x_test``, ``y_test``; each cloud normalised."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "x" not in arrays:
        raise DataError(f"'{path}' has kind='points' but no array 'x'; save x=(N, P, 3)")

    def split(xk: str, yk: str) -> PointsData:
        x = arrays[xk]
        if x.ndim != 3 or x.shape[2] != 3 or x.dtype.kind not in "fiu" or len(x) == 0:
            raise DataError(
                f"'{path}': '{xk}' has shape {tuple(x.shape)} ({x.dtype}); point clouds are "
                "numbers of shape (N, P, 3)"
            )
        x = x.astype(np.float64)
        ok = np.isfinite(x).all(axis=(1, 2)) & (np.ptp(x, axis=1).max(axis=1) > 0)
        y = arrays.get(yk)
        if y is not None and (y.ndim != 1 or len(y) != len(x)):
            raise DataError(
                f"'{path}': '{yk}' has shape {tuple(y.shape)} but '{xk}' has {len(x)} clouds; "
                "give one integer label per cloud"
            )
        if not ok.any():  # one line, without a warning about skipping first
            raise DataError(f"'{path}': every cloud in '{xk}' is NaN or degenerate")
        if not ok.all():
            warnings.warn(
                f"{path.stem}/{xk}: skipped {int((~ok).sum())} cloud(s) with NaN/infinite or "
                "identical coordinates",
                DataWarning,
                stacklevel=4,
            )
            x, y = x[ok], (None if y is None else y[ok])
        xn = np.stack([normalise(p) for p in x]).transpose(0, 2, 1).astype(np.float32)
        return PointsData(xn, y, None, f"{path.stem}/{xk}", {"skipped": int((~ok).sum())})

    train = split("x", "y")
    test = split("x_test", "y_test") if "x_test" in arrays else None
    if test is not None and test.points != train.points:
        raise DataError(
            f"'{path}': x_test has {test.points} points per cloud but x has {train.points}; "
            "give both splits the same number of points"
        )
    return Splits(train, test)
