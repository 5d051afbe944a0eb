"""Arrays in a ``.npz`` file: ``x`` and optional ``y`` (N,) integers.

- images: ``x`` (N, H, W) or (N, H, W, C) uint8;
- series: ``x`` (N, C, T) float (NaN for missing steps or padding after a shorter series).

Optional ``x_test`` / ``y_test`` give a test split. Files are opened with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData, SeriesData, Splits, check_images


def load_npz(path: Path) -> Splits:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy renamed to .npz
            raise ValueError("a single .npy array, not an .npz archive")
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
    except (
        ValueError,
        OSError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        NotImplementedError,
    ) as err:
        raise DataError(
            f"'{path}' is not a readable .npz file ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); save arrays with numpy.savez"
        ) from None
    if "x" not in arrays:
        raise DataError(
            f"'{path}' has no array named 'x' (found: {', '.join(arrays) or 'none'}); "
            "save images as x=(N,H,W[,C]) uint8"
        )

    for key in ("x", "x_test"):  # complex, text, object...: no kind of data reads them
        if key in arrays and arrays[key].dtype.kind not in "biuf":
            raise DataError(
                f"'{path}': array '{key}' has dtype {arrays[key].dtype}; give uint8 images "
                "(N, H, W[, C]), float series (N, C, T) or a numeric table (N, F)"
            )

    def images(key: str) -> np.ndarray:
        x = arrays[key]
        if x.ndim == 3:
            x = x[..., None]
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise DataError(
                f"'{path}': array '{key}' contains NaN or Inf; images must be uint8 0-255"
            )
        check_images(x, f"'{path}': array '{key}'")
        return x

    def labels(key: str, n: int, xkey: str):
        if key not in arrays:
            return None
        y = arrays[key]
        if y.ndim != 1 or len(y) != n:
            raise DataError(
                f"'{path}': array '{key}' has shape {tuple(y.shape)} but '{xkey}' has "
                f"{n} samples; give one integer label per sample ({key}=(N,))"
            )
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise DataError(
                f"'{path}': array '{key}' contains NaN or Inf; labels must be integers "
                "(use -1 for an unlabelled sample)"
            )
        if y.dtype.kind not in "iubf":
            raise DataError(f"'{path}': array '{key}' has dtype {y.dtype}; labels must be integers")
        return y

    name = path.stem
    if arrays["x"].ndim == 2:  # (N, F) table rows
        from .table import table_from_arrays

        return table_from_arrays(arrays, path)
    if arrays["x"].dtype.kind == "f" and arrays["x"].ndim == 3:
        return _series(path, arrays, labels)
    x = images("x")
    train = ImageData(x, labels("y", len(x), "x"), None, f"{name}/x")
    test = None
    if "x_test" in arrays:
        xt = images("x_test")
        if xt.shape[3] != x.shape[3]:  # the encoder takes one number of channels
            raise DataError(
                f"'{path}': 'x_test' has {xt.shape[3]} channel(s) but 'x' has {x.shape[3]}; give "
                "both splits in the same colour layout (grayscale or RGB)"
            )
        test = ImageData(xt, labels("y_test", len(xt), "x_test"), None, f"{name}/x_test")
    elif "y_test" in arrays:
        raise DataError(f"'{path}' has 'y_test' but no 'x_test'; save the test images as x_test")
    return Splits(train, test)


def _series(path: Path, arrays: dict, labels) -> Splits:
    name = path.stem
    x = arrays["x"]
    train = SeriesData(x, labels("y", len(x), "x"), None, f"{name}/x")
    test = None
    if "x_test" in arrays:
        xt = arrays["x_test"]
        if xt.ndim != 3 or xt.shape[1] != x.shape[1]:
            raise DataError(
                f"'{path}': 'x_test' has shape {tuple(xt.shape)} but 'x' has {x.shape[1]} "
                "channel(s); give x_test as (N, C, T) with the same channels"
            )
        test = SeriesData(xt, labels("y_test", len(xt), "x_test"), None, f"{name}/x_test")
    elif "y_test" in arrays:
        raise DataError(f"'{path}' has 'y_test' but no 'x_test'; save the test series as x_test")
    return pad_splits(Splits(train, test))


def pad_splits(splits: Splits) -> Splits:
    """Series splits NaN-padded to one common length (a padded step is not a missing value: every
    encoder masks it, see :mod:`selfsup.models.timeseries`)."""
    import dataclasses

    parts = [d for d in (splits.train, splits.test) if d is not None]
    t = max(d.length for d in parts)

    def pad(d):
        if d is None or d.length == t:
            return d
        x = np.full((len(d), d.channels, t), np.nan, dtype=np.float32)
        x[:, :, : d.length] = d.x
        return dataclasses.replace(d, x=x)

    return Splits(pad(splits.train), pad(splits.test))


def npy_dtypes(path: Path) -> dict[str, np.dtype]:
    """``{array name: dtype}`` of an ``.npz``, read from the headers only ({} when unreadable)."""
    out: dict[str, np.dtype] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if not n.endswith(".npy"):
                    continue
                with z.open(n) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    out[n[:-4]] = read(f)[2]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return {}
    return out


def has_string_member(path: Path) -> bool:
    """A paired ``.npz`` (``x_a``, ``x_b``) where either member is an array of strings (a text
    member; the text source reads it, whatever the other member is)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    kinds = npy_dtypes(path)
    return "x_a" in kinds and any(k in kinds and kinds[k].kind == "U" for k in ("x_a", "x_b"))
