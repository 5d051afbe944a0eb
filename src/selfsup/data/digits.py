"""scikit-learn's handwritten digits (8x8 grayscale, 1,797 images, 10 classes): the built-in
default.

Pixel values 0-16 are mapped to uint8 0-255. The test split is a fixed stratified 25%
(seed 0), so every run evaluates on the same images.
"""

from __future__ import annotations

import numpy as np

from .base import ImageData, Splits, stratified_split


def load_digits() -> Splits:
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    classes = [str(c) for c in range(10)]
    tr, te = stratified_split(y, 0.25, seed=0)
    return Splits(
        ImageData(x[tr], y[tr], classes, "digits/train"),
        ImageData(x[te], y[te], classes, "digits/test"),
    )
