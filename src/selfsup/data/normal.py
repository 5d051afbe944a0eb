"""The anomaly-detection split (``--normal-label VALUE``), the same for every modality.

Training uses the samples of the training split whose label is the normal class; evaluation uses
the whole test split, the samples of every other class being the anomalies. A source without a
labelled test split is split once (stratified 80/20, seed 0) before the normal samples are taken.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import Samples, Splits, stratified_split


def class_index(value: str, data: Samples) -> int:
    """The label index that ``value`` names: a class name, else a label number present in
    ``data``."""
    if data.classes and value in data.classes:
        return data.classes.index(value)
    try:
        c = int(value)
    except ValueError:
        c = None
    if c is not None and data.y is not None and bool((data.y == c).any()):
        return c
    names = (
        ", ".join(data.classes[:12])
        if data.classes
        else ", ".join(str(v) for v in np.unique(data.y[data.y >= 0])[:12])
        if data.y is not None
        else "none"
    )
    raise DataError(
        f"--normal-label '{value}' matches no row of '{data.name}' (its labels: {names}); give one "
        "of them"
    )


def normal_split(
    splits: Splits, value: str, test: Samples | None = None
) -> tuple[Splits, Samples, Samples]:
    """``(training splits of the normal class, normal training samples, test samples)``.

    ``test``: the evaluation samples (default: the test split of ``splits``)."""
    tr = splits.train
    if not tr.labelled:
        raise DataError(
            f"--normal-label needs labels, but '{tr.name}' has none; give labelled data "
            "(for a table, --label-column NAME)"
        )
    c = class_index(value, tr)
    te = test if test is not None else splits.test
    if te is None or not te.labelled:
        a, b = stratified_split(tr.y, 0.2, seed=0)
        tr, te = tr.subset(a, tr.name + "[80%]"), tr.subset(b, tr.name + "[20%]")
    te = te.subset(np.flatnonzero(te.y >= 0)) if bool((te.y < 0).any()) else te
    normal = tr.subset(np.flatnonzero(tr.y == c), f"{tr.name}[{value}]")
    if len(normal) == 0:
        raise DataError(
            f"--normal-label '{value}' matches no row of the training split '{tr.name}'"
        )
    anomalous = te.y != c
    if bool(anomalous.all()) or not bool(anomalous.any()):
        raise DataError(
            f"the test split '{te.name}' needs both normal ('{value}') and other samples to score "
            "anomaly detection; it has only one kind"
        )
    return Splits(normal, splits.test), normal, te
