"""Decode once: decoded arrays are cached as ``.npz`` files keyed by the source's path, file sizes
and modification times (and the decode options), written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_path
from .base import ImageData, Samples, Splits


def cache_root(cache_dir: str | None) -> Path:
    return Path(cache_dir or os.environ.get("SELFSUP_CACHE") or Path.home() / ".cache" / "selfsup")


def fingerprint(path: Path, options: dict) -> str:
    h = hashlib.sha256()
    h.update(os.fsencode(path.resolve()))  # names need not be UTF-8: hash their bytes
    h.update(json.dumps(options, sort_keys=True).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        name = os.fsencode(f.relative_to(path) if f != path else f.name)
        h.update(name + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _pack(prefix: str, d: Samples, out: dict, fields: tuple[str, ...]) -> None:
    for name in fields:
        out[f"{prefix}{name}"] = getattr(d, name)
    if d.y is not None:
        out[f"{prefix}y"] = d.y
    out[f"{prefix}meta"] = np.array(
        json.dumps({"classes": d.classes, "name": d.name, "info": d.info})
    )


def _unpack(prefix: str, f, container: type[Samples], fields: tuple[str, ...]) -> Samples:
    meta = json.loads(str(f[f"{prefix}meta"]))
    y = f[f"{prefix}y"] if f"{prefix}y" in f.files else None
    extra = {name: f[f"{prefix}{name}"] for name in fields if name != "x"}
    return container(  # type: ignore[call-arg]
        f[f"{prefix}x"], y, meta["classes"], meta["name"], meta["info"], **extra
    )


def load_cached(
    key: str, root: Path, container: type[Samples] = ImageData, fields: tuple[str, ...] = ("x",)
) -> Splits | None:
    """The splits cached under ``key``, as ``container``s whose array ``fields`` (``x`` first;
    audio adds ``lengths``) were stored with :func:`store`; None when absent or damaged."""
    p = root / f"{key}.npz"
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as f:
            train = _unpack("train_", f, container, fields)
            test = _unpack("test_", f, container, fields) if "test_x" in f.files else None
        return Splits(train, test)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError, DataError):
        return None  # a damaged cache entry is rebuilt, never trusted


def store(key: str, root: Path, splits: Splits, fields: tuple[str, ...] = ("x",)) -> None:
    """Cache ``splits`` under ``key`` (their array ``fields``, labels, classes, name and info)."""
    arrays: dict = {}
    _pack("train_", splits.train, arrays, fields)
    if splits.test is not None:
        _pack("test_", splits.test, arrays, fields)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(root / f"{key}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError:
        pass  # a cache that cannot be written costs time, not correctness
