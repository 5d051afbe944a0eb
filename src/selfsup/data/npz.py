"""Arrays in a ``.npz`` file: ``x`` (N, H, W) or (N, H, W, C) uint8 and optional ``y`` (N,) integers.

Optional ``x_test`` / ``y_test`` give a test split. Files are opened with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData, Splits


def load_npz(path: Path) -> Splits:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"'{path}' is not a readable .npz file ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); save arrays with numpy.savez") from None
    if "x" not in arrays:
        raise DataError(f"'{path}' has no array named 'x' (found: {', '.join(arrays) or 'none'}); "
                        "save images as x=(N,H,W[,C]) uint8")

    def images(key: str) -> np.ndarray:
        x = arrays[key]
        if x.ndim == 3:
            x = x[..., None]
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise DataError(f"'{path}': array '{key}' contains NaN or Inf; images must be uint8 0-255")
        return x

    name = path.stem
    train = ImageData(images("x"), arrays.get("y"), None, f"{name}/x")
    test = None
    if "x_test" in arrays:
        test = ImageData(images("x_test"), arrays.get("y_test"), None, f"{name}/x_test")
    return Splits(train, test)
