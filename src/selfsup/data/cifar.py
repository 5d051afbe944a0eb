"""CIFAR-10 / CIFAR-100 in the python batch format (``cifar-10-batches-py``, ``cifar-100-python``).

Those files are pickles. They are read with a restricted unpickler that builds only plain
containers and numpy arrays, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData, Splits

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
    ) as err:
        raise DataError(
            f"cannot read CIFAR batch '{path}' ({type(err).__name__}: {err}); "
            "re-extract the archive"
        ) from None
    if not isinstance(d, dict):
        raise DataError(f"CIFAR batch '{path}' does not hold a dictionary; re-extract the archive")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _images(d: dict, path: Path) -> np.ndarray:
    data = np.asarray(d.get("data"))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"CIFAR batch '{path}' has data of shape {data.shape}, expected (N, 3072)")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def find_cifar(path: Path) -> Path | None:
    for cand in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (cand / "data_batch_1").is_file() or (
            (cand / "train").is_file() and (cand / "meta").is_file()
        ):
            return cand
    return None


def load_cifar(root: Path) -> Splits:
    if (root / "data_batch_1").is_file():
        names = [root / f"data_batch_{i}" for i in range(1, 6)]
        missing = [str(n) for n in names + [root / "test_batch"] if not n.is_file()]
        if missing:
            raise DataError(
                f"CIFAR-10 folder '{root}' is missing {', '.join(missing)}; re-extract the archive"
            )
        batches = [_read(n) for n in names]
        test = _read(root / "test_batch")
        meta = _read(root / "batches.meta") if (root / "batches.meta").is_file() else {}
        classes = [
            c.decode() if isinstance(c, bytes) else str(c)
            for c in meta.get("label_names", range(10))
        ]
        xtr = np.concatenate([_images(b, root) for b in batches])
        ytr = np.concatenate([np.asarray(b["labels"]) for b in batches])
        return Splits(
            ImageData(xtr, ytr, classes, "cifar10/train"),
            ImageData(_images(test, root), np.asarray(test["labels"]), classes, "cifar10/test"),
        )
    train, test = _read(root / "train"), _read(root / "test")
    meta = _read(root / "meta")
    classes = [
        c.decode() if isinstance(c, bytes) else str(c)
        for c in meta.get("fine_label_names", range(100))
    ]
    return Splits(
        ImageData(
            _images(train, root), np.asarray(train["fine_labels"]), classes, "cifar100/train"
        ),
        ImageData(_images(test, root), np.asarray(test["fine_labels"]), classes, "cifar100/test"),
    )
