"""The UCR/UEA archive's ``.ts`` format, read without sktime.

A ``.ts`` file is a header of ``@key value`` lines (``@problemName``, ``@univariate``,
``@dimensions``, ``@equalLength``, ``@classLabel true L1 L2 ...``, ``@targetLabel``, ``@missing``,
``@timeStamps``), comment lines starting with ``#`` (or ``%``), then ``@data`` and one case per
line: the dimensions separated by ``:``, the values of a dimension by ``,`` (``?`` is a missing
value), and the class label (or regression target) last.

``load_ts(path)`` accepts a file (one split, no test split) or a folder holding
``NAME_TRAIN.ts`` and ``NAME_TEST.ts`` (the archive's own split). Cases of unequal length, and
dimensions of unequal length within a case, are NaN-padded after their last value (see
:class:`selfsup.data.base.SeriesData`); both splits are padded to one common length. Class labels
become 0..K-1 in the order the header lists them (``classes`` keeps the names); a regression set
(``@targetLabel true``) loads unlabelled, its targets in ``info["targets"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import SeriesData, Splits


def load_ts(path: Path, name: str | None = None) -> Splits:
    """A ``.ts`` file (one split) or a folder with ``NAME_TRAIN.ts`` and ``NAME_TEST.ts``."""
    from .npz import pad_splits

    path = Path(path)
    if path.is_dir():
        train_files = sorted(path.glob("*_TRAIN.ts"))
        if len(train_files) != 1:
            found = ", ".join(p.name for p in train_files) or "none"
            raise DataError(
                f"folder '{path}' must hold exactly one NAME_TRAIN.ts and its NAME_TEST.ts "
                f"(found TRAIN files: {found})"
            )
        stem = train_files[0].name[: -len("_TRAIN.ts")]
        test_file = path / f"{stem}_TEST.ts"
        if not test_file.is_file():
            raise DataError(
                f"folder '{path}' has {stem}_TRAIN.ts but no {stem}_TEST.ts; add the test split "
                f"or point --data at {train_files[0]} alone"
            )
        label = name or stem
        train = read_ts(train_files[0], f"{label}/train")
        test = read_ts(test_file, f"{label}/test")
        if train.channels != test.channels:
            raise DataError(
                f"'{test_file}' has {test.channels} dimension(s) but '{train_files[0]}' has "
                f"{train.channels}; the splits must have the same dimensions"
            )
        if train.classes != test.classes and train.classes and test.classes:
            test = _relabel(test, train.classes, test_file)
        return pad_splits(Splits(train, test))
    return Splits(read_ts(path, name or path.stem))


def read_ts(path: Path, name: str) -> SeriesData:
    """One ``.ts`` file as a :class:`SeriesData` (errors name the file and line)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read '{path}' as a .ts text file ({type(err).__name__})") from None
    header: dict[str, str] = {}
    lines = text.splitlines()
    start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if line.lower() == "@data":
            start = i + 1
            break
        if not line.startswith("@"):
            raise DataError(
                f"'{path}' line {i + 1}: expected a header line (@key value) or @data before "
                "the cases; is this a .ts file of the UCR/UEA archive?"
            )
        key, _, value = line[1:].partition(" ")
        header[key.lower()] = value.strip()
    if start is None:
        raise DataError(f"'{path}' has no @data line; is this a .ts file of the UCR/UEA archive?")
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(
            f"'{path}' uses timestamped values (@timeStamps true), which are not supported; "
            "give the series as plain comma-separated values"
        )
    class_spec = header.get("classlabel", "false").split()
    has_class = bool(class_spec) and class_spec[0].lower() == "true"
    has_target = header.get("targetlabel", "false").split()[:1] == ["true"]
    declared = class_spec[1:] if has_class else []

    cases: list[list[np.ndarray]] = []
    labels: list[str] = []
    for i in range(start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith(("#", "%")):
            continue
        parts = line.split(":")
        if has_class or has_target:
            if len(parts) < 2:
                raise DataError(
                    f"'{path}' line {i + 1}: no label after the values (expected "
                    "'values:...:label')"
                )
            labels.append(parts[-1].strip())
            parts = parts[:-1]
        try:
            dims = [
                np.array(
                    [np.nan if v.strip() == "?" else float(v) for v in p.split(",")], np.float32
                )
                if p.strip()
                else np.array([np.nan], np.float32)
                for p in parts
            ]
        except ValueError:
            raise DataError(
                f"'{path}' line {i + 1}: a value is not a number (values are comma-separated, "
                "dimensions ':'-separated, '?' marks a missing value)"
            ) from None
        if cases and len(dims) != len(cases[0]):
            raise DataError(
                f"'{path}' line {i + 1}: {len(dims)} dimension(s) but the first case has "
                f"{len(cases[0])}; every case needs the same dimensions"
            )
        cases.append(dims)
    if not cases:
        raise DataError(f"'{path}' has no cases after @data")
    t = max(len(d) for c in cases for d in c)
    x = np.full((len(cases), len(cases[0]), t), np.nan, np.float32)
    for n, c in enumerate(cases):
        for k, d in enumerate(c):
            x[n, k, : len(d)] = d
    if np.isinf(x).any():
        raise DataError(f"'{path}' holds infinite values; replace them with '?' (missing)")
    empty = np.flatnonzero(np.isnan(x).all(axis=(1, 2)))
    if len(empty):
        raise DataError(
            f"'{path}': case {int(empty[0]) + 1} has no observed value (all '?'); drop it"
        )
    info: dict = {"source": str(path)}
    y = classes = None
    if has_class:
        classes = declared or sorted(set(labels))
        index = {c: j for j, c in enumerate(classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(
                f"'{path}': label '{unknown[0]}' is not among the classes its header declares "
                f"({', '.join(classes)})"
            )
        y = np.array([index[v] for v in labels], np.int64)
    elif has_target:
        try:
            info["targets"] = np.array([float(v) for v in labels], np.float64)
        except ValueError:
            raise DataError(f"'{path}': a regression target is not a number") from None
    return SeriesData(x, y, classes, name, info)


def _relabel(test: SeriesData, classes: list[str], path: Path) -> SeriesData:
    """Map the test split's labels onto the training split's class order."""
    import dataclasses

    index = {c: j for j, c in enumerate(classes)}
    names = [test.classes[int(v)] for v in test.y] if test.y is not None else []
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise DataError(
            f"'{path}': class '{unknown[0]}' does not occur in the training split's header"
        )
    return dataclasses.replace(
        test, y=np.array([index[n] for n in names], np.int64), classes=list(classes)
    )
