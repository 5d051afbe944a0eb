"""A generated, labelled mesh folder, then ``selfsup train --data ROOT`` on it (no other flag).

    python benchmarks/mesh_folder.py                       # writes /tmp/selfsup-bench-meshes
    python benchmarks/mesh_folder.py --method pointmae     # the same folder, one more flag

The meshes are generated here (no labelled mesh set ships in a package this project may install):
eight classes of procedural solids, none of them one of the built-in ``shapes``' primitives --
prisms of a five-pointed star, a plus sign, an L, a square frame (a square with a square hole),
and a pipe (an annulus), a dumbbell (two spheres on a rod), a table (a slab on four legs) and a
mushroom (a cap on a stem) -- each with random proportions, a random non-uniform scale of up to
25% per axis and a random pose in SO(3), written in turn as ``.off``, ``.ply``, ``.obj`` and
``.stl`` (trimesh) under ``ROOT/train/<class>/`` (``--train`` per class) and ``ROOT/test/<class>/``
(``--test`` per class). The training command is the user's: the folder is read by selfsup's mesh
source (``--points`` 1024 area-weighted surface samples per mesh), with the default method and the
points modality's defaults. One line of JSON: the pretrained, random-init and D2 figures (SVM, kNN,
linear), the epochs, and the CPU seconds of the training command (``selfsup`` in a child process,
``OMP_NUM_THREADS=1`` unless ``--threads`` says otherwise: one torch thread).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from selfsup.data.points import merge_meshes, random_rotation

CLASSES = ("star", "cross", "ell", "frame", "pipe", "dumbbell", "table", "mushroom")
FORMATS = (".off", ".ply", ".obj", ".stl")


def prism(outer: np.ndarray, depth: float, inner: np.ndarray | None = None):
    """The solid extruded along z (from -depth/2 to depth/2) of a polygon ``outer`` (L, 2),
    counter-clockwise and star-shaped about the origin (its caps are fans from the origin), or,
    with ``inner`` (L, 2) a hole of as many vertices, of the band between the two loops."""
    n = len(outer)
    lo, hi = -depth / 2, depth / 2
    loops = [outer] if inner is None else [outer, inner]
    verts = [np.c_[p, np.full(n, z)] for p in loops for z in (lo, hi)]
    faces = []
    base = 0
    for j, _ in enumerate(loops):  # side walls (the inner loop's face the other way)
        b, t = base, base + n
        for i in range(n):
            i1 = (i + 1) % n
            quad = [(b + i, b + i1, t + i1), (b + i, t + i1, t + i)]
            faces += quad if j == 0 else [f[::-1] for f in quad]
        base += 2 * n
    if inner is None:
        verts += [np.array([[0.0, 0.0, lo], [0.0, 0.0, hi]])]
        c_lo, c_hi = 2 * n, 2 * n + 1
        for i in range(n):
            i1 = (i + 1) % n
            faces += [(c_lo, i1, i), (c_hi, n + i, n + i1)]
    else:  # caps: the band between outer (0 .. 2n) and inner (2n .. 4n)
        for i in range(n):
            i1 = (i + 1) % n
            ob, ot, ib, it = 0, n, 2 * n, 3 * n
            faces += [(ob + i, ib + i1, ob + i1), (ob + i, ib + i, ib + i1)]
            faces += [(ot + i, ot + i1, it + i1), (ot + i, it + i1, it + i)]
    return np.concatenate(verts), np.asarray(faces, dtype=np.int64)


def box(c, s):
    import trimesh

    m = trimesh.creation.box(extents=s)
    return np.asarray(m.vertices) + np.asarray(c), np.asarray(m.faces)


def ring(r, n, phase=0.0):
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.c_[r * np.cos(a), r * np.sin(a)]


def solid(kind: str, rng: np.random.Generator):
    """Vertices and faces of one solid of ``kind`` with random proportions (before its pose)."""
    import trimesh

    u = rng.uniform
    if kind == "star":
        r_in = u(0.3, 0.55)
        pts = ring(1.0, 10) * np.where(np.arange(10) % 2 == 0, 1.0, r_in)[:, None]
        return prism(pts, u(0.2, 0.6))
    if kind == "cross":
        a, w = 1.0, u(0.2, 0.4)
        pts = np.array(
            [[w, -w], [a, -w], [a, w], [w, w], [w, a], [-w, a],
             [-w, w], [-a, w], [-a, -w], [-w, -w], [-w, -a], [w, -a]]
        )  # fmt: skip
        return prism(pts, u(0.2, 0.6))
    if kind == "ell":
        lx, ly, w = u(0.8, 1.4), u(0.8, 1.4), u(0.25, 0.45)
        pts = np.array([[-w, -w], [lx, -w], [lx, w], [w, w], [w, ly], [-w, ly]])
        return prism(pts, u(0.2, 0.6))
    if kind == "frame":
        a, b, t = u(0.8, 1.2), u(0.8, 1.2), u(0.15, 0.35)
        sq = np.array([[1, -1], [1, 1], [-1, 1], [-1, -1]], float)
        return prism(sq * [a, b], u(0.2, 0.5), sq * [a - t, b - t])
    if kind == "pipe":
        r, t = u(0.4, 0.8), u(0.08, 0.2)
        return prism(ring(r, 40), u(1.0, 2.5), ring(r - t, 40))
    if kind == "dumbbell":
        rs, rr, gap = u(0.3, 0.5), u(0.06, 0.14), u(0.6, 1.4)
        s1 = trimesh.creation.icosphere(2, rs)
        rod = trimesh.creation.cylinder(rr, gap, sections=16)
        v1 = np.asarray(s1.vertices)
        return merge_meshes(
            (v1 + [0, 0, gap / 2], np.asarray(s1.faces)),
            (v1 - [0, 0, gap / 2], np.asarray(s1.faces)),
            (np.asarray(rod.vertices), np.asarray(rod.faces)),
        )
    if kind == "table":
        w, d, h, t, leg = u(0.8, 1.4), u(0.6, 1.2), u(0.6, 1.2), u(0.06, 0.15), u(0.06, 0.14)
        parts = [box([0, 0, h], [2 * w, 2 * d, t])]
        for sx in (-1, 1):
            for sy in (-1, 1):
                c = [sx * (w - leg), sy * (d - leg), h / 2]
                parts.append(box(c, [2 * leg, 2 * leg, h]))
        return merge_meshes(*parts)
    if kind == "mushroom":
        rc, hc, rs, hs = u(0.7, 1.1), u(0.3, 0.7), u(0.12, 0.3), u(0.6, 1.3)
        cap = trimesh.creation.cone(rc, hc, sections=32)
        stem = trimesh.creation.cylinder(rs, hs, sections=16)
        return merge_meshes(
            (np.asarray(cap.vertices) + [0, 0, hs / 2], np.asarray(cap.faces)),
            (np.asarray(stem.vertices), np.asarray(stem.faces)),
        )
    raise ValueError(kind)


def write_folder(root: Path, n_train: int, n_test: int, seed: int) -> int:
    """Write the generated folder; returns the number of files."""
    import trimesh

    rng = np.random.default_rng(seed)
    count = 0
    for split, n in (("train", n_train), ("test", n_test)):
        for kind in CLASSES:
            d = root / split / kind
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                v, f = solid(kind, rng)
                v = (v * rng.uniform(0.8, 1.25, 3)) @ random_rotation(rng).T
                ext = FORMATS[i % len(FORMATS)]
                trimesh.Trimesh(v, f, process=False).export(d / f"{kind}_{i:03d}{ext}")
                count += 1
    return count


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/selfsup-bench-meshes")
    ap.add_argument("--train", type=int, default=50, help="meshes per class in train/")
    ap.add_argument("--test", type=int, default=20, help="meshes per class in test/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", default=None, help="one more flag: --method M")
    ap.add_argument("--out", default="/tmp/selfsup-bench-meshes-run")
    ap.add_argument(
        "--threads", default="1", help="OMP_NUM_THREADS of the training command (its torch threads)"
    )
    a = ap.parse_args()
    root = Path(a.root)
    files = write_folder(root, a.train, a.test, a.seed)
    cmd = [sys.executable, "-m", "selfsup", "train", "--data", str(root), "--out", a.out]
    cmd += ["--method", a.method] if a.method else []
    env = {**os.environ, "OMP_NUM_THREADS": a.threads}
    subprocess.run(cmd + ["--overwrite"], check=True, env=env)
    cpu = child_cpu()
    s = json.loads((Path(a.out) / "summary.json").read_text())
    rows = {"pretrained": s["eval"], **s["baselines"]}
    keep = ("svm_top1", "knn_top1", "linear_top1")
    print(
        json.dumps(
            {
                "files": files,
                "method": a.method or "default",
                "epochs": s.get("epochs"),
                "steps": s.get("steps"),
                **{f"{r}.{k}": round(v[k], 4) for r, v in rows.items() for k in keep if k in v},
                "cpu_s": round(cpu),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
