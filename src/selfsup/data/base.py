"""The in-memory form every source decodes to, once: uint8 images with optional labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError


@dataclass
class ImageData:
    """Decoded images as a uint8 array of shape (N, H, W, C), C in {1, 3}.

    ``y`` holds integer labels (N,) or is None for unlabelled data; ``-1`` marks an unlabelled
    sample inside a partly labelled set. ``classes`` names the label values when known.
    """

    x: np.ndarray
    y: np.ndarray | None = None
    classes: list[str] | None = None
    name: str = "data"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        check_images(self.x, self.name)
        if self.y is not None:
            self.y = check_labels(self.y, len(self.x), self.name)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def channels(self) -> int:
        return int(self.x.shape[3])

    @property
    def size(self) -> int:
        return int(self.x.shape[1])

    @property
    def labelled(self) -> bool:
        return self.y is not None and bool((self.y >= 0).any())

    def subset(self, idx: np.ndarray, name: str | None = None) -> ImageData:
        return ImageData(self.x[idx], None if self.y is None else self.y[idx], self.classes,
                         name or self.name, dict(self.info))


@dataclass
class Splits:
    train: ImageData
    test: ImageData | None = None


def check_images(x, name: str) -> None:
    if not isinstance(x, np.ndarray):
        raise DataError(f"{name}: images must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DataError(f"{name}: images must have shape (N, H, W) or (N, H, W, C) with C 1 or 3, "
                        f"got {tuple(x.shape)}")
    if x.dtype != np.uint8:
        raise DataError(f"{name}: images must be uint8 (0-255), got {x.dtype}; convert with "
                        "(x * 255).round().astype('uint8') for floats in [0, 1]")
    if len(x) == 0:
        raise DataError(f"{name}: the dataset is empty; point --data at a source with images")


def check_labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{name}: labels must have shape (N,), got {tuple(y.shape)}")
    if len(y) != n:
        raise DataError(f"{name}: {len(y)} labels for {n} samples; give exactly one label per sample")
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{name}: labels must be integers, got {y.dtype}")
    return y.astype(np.int64)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-stratified split, reproducible under ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
