"""Tables: CSV, Parquet (the ``tabular`` extra: pyarrow) and ``.npz`` sources, and the built-in
``breast_cancer`` and ``wine`` (shipped inside scikit-learn; nothing is downloaded).

A table becomes a :class:`~selfsup.data.base.TableData`: float32 (N, F) with numeric columns in
their own units and categorical columns as integer codes. Column kinds are inferred: a column whose
values all parse as numbers is numeric; one where at least half of them do is numeric with bad
cells; any other column is categorical. The label column (``--label-column NAME``) is taken out of
the features; its values become the class names (sorted, numerically when they are all numbers);
a row without a label is kept as unlabelled (label -1).

A file holds no split of its own, so a labelled file is split once, stratified by label, into 80%
training and 20% test rows (seed 0); an unlabelled file is all training rows. Category vocabularies
are fitted on the training rows only (a test category never seen in training gets code -1); the
standardisation is fitted on the training split by the modality (:mod:`selfsup.modalities.tabular`).
Both travel in the encoder's metadata, and :func:`encode_table` encodes new rows with them.

Bad rows (a wrong number of fields, text in a numeric column, a missing value: empty, NaN, NA, ...)
are refused in one line naming the file, the row and the column, or, with ``--skip-corrupt``,
left out and counted (``info['skipped']``, one warning line).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, DataWarning
from .base import Splits, TableData, stratified_split

MISSING = {"", "nan", "na", "n/a", "null", "none", "?"}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
TEST_FRACTION = 0.2


class _Column:
    """One raw column: ``num`` float values (NaN = missing) or ``text`` strings (None = missing)."""

    def __init__(
        self,
        name: str,
        num: np.ndarray | None = None,
        text: list | None = None,
        rows: np.ndarray | None = None,
    ):
        self.name, self.num, self.text, self.rows = name, num, text, rows


def load_table(path: Path, label_column: str | None = None, skip_corrupt: bool = False) -> Splits:
    """A CSV/TSV or Parquet file as train/test :class:`TableData` (see the module docstring)."""
    suffix = path.suffix.lower()
    bad: list[tuple[int, str]] = []
    if suffix in (".parquet", ".pq"):
        cols = _read_parquet(path)
    else:
        cols, bad = _read_csv(path, "\t" if suffix == ".tsv" else ",", skip_corrupt)
    return _build(cols, bad, label_column, skip_corrupt, f"'{path}'", path.stem, "row {r}")


def _read_csv(
    path: Path, delimiter: str, skip_corrupt: bool
) -> tuple[list[_Column], list[tuple[int, str]]]:
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(
                    f"'{path}' is empty; give a header row with the column names, then one row "
                    "per sample"
                )
            header = [h.strip() for h in header]
            other = next(
                (d for d in (";", "\t", "|", ",") if d != delimiter and d in header[0]), None
            )
            if len(header) == 1 and other is not None:  # never one text column by mistake
                shown = "a tab" if other == "\t" else f"'{other}'"
                raise DataError(
                    f"'{path}' has a single column whose name '{header[0][:60]}' contains {shown}: "
                    f"it looks separated by {shown}, not '{delimiter}'; save it comma-separated "
                    "as .csv (or tab-separated as .tsv)"
                )
            if len(set(header)) != len(header) or "" in header:
                dup = next((h for h in header if header.count(h) > 1 or not h), "")
                raise DataError(
                    f"'{path}': the header has an empty or repeated column name ('{dup}'); give "
                    "each column a unique name"
                )
            rows, skipped = [], []
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    r = len(rows) + len(skipped) + 1
                    col = (
                        header[len(row)]
                        if len(row) < len(header)
                        else f"<extra field {len(header) + 1}>"
                    )
                    msg = (
                        f"'{path}': row {r} (line {reader.line_num}), column '{col}': the row has "
                        f"{len(row)} fields but the header has {len(header)}"
                    )
                    if not skip_corrupt:
                        raise DataError(
                            msg + "; fix the row or pass --skip-corrupt to skip bad rows"
                        )
                    skipped.append((r, msg))
                    continue
                rows.append(row)
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not UTF-8 text; save the table as a UTF-8 CSV") from None
    except csv.Error as err:
        raise DataError(f"'{path}' is not a readable CSV ({err})") from None
    if not rows:
        raise DataError(f"'{path}' has a header but no rows; give at least one row per sample")
    # each kept row's number in the file (rows skipped for their field count are not renumbered)
    numbers, k = [], 0
    skip_rows = {r for r, _ in skipped}
    while len(numbers) < len(rows):
        k += 1
        if k not in skip_rows:
            numbers.append(k)
    nums = np.asarray(numbers)
    return [
        _Column(h, text=[row[j].strip() for row in rows], rows=nums) for j, h in enumerate(header)
    ], skipped


def _read_parquet(path: Path) -> list[_Column]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading '{path}' needs pyarrow; install it with pip install \"selfsup[tabular]\""
        ) from None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(
            f"'{path}' is not a readable Parquet file ({str(err).splitlines()[0]})"
        ) from None
    if table.num_rows == 0:
        raise DataError(f"'{path}' has no rows; give at least one row per sample")
    cols = []
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            num = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
            cols.append(_Column(name, num=num))
        else:
            text = [None if v is None else str(v).strip() for v in col.to_pylist()]
            cols.append(_Column(name, text=text))
    return cols


def _parse_numbers(text: list) -> tuple[np.ndarray, np.ndarray]:
    """``(values, ok)``: floats (NaN where missing or not a number) and which cells parsed."""
    vals = np.full(len(text), np.nan)
    ok = np.zeros(len(text), dtype=bool)
    for i, s in enumerate(text):
        if s is None or s.lower() in MISSING:
            continue
        try:
            vals[i] = float(s)
            ok[i] = np.isfinite(vals[i])
        except ValueError:
            pass
    return vals, ok


#: the largest magnitude a float32 feature holds; a finite value beyond it would become infinite
F32_MAX = float(np.finfo(np.float32).max)


def _too_large(vals: np.ndarray) -> np.ndarray:
    """Which finite values overflow float32 (a 1e308 in a CSV is finite, but not as a feature)."""
    v = np.asarray(vals, dtype=np.float64)
    return np.isfinite(v) & (np.abs(v) > F32_MAX)


def _too_large_why(column: str, value: float) -> str:
    return (
        f"column '{column}': value {value:g} is beyond the 32-bit float range (about 3.4e38); "
        "rescale the column"
    )


def _missing(s) -> bool:
    return s is None or s.lower() in MISSING


def _build(
    cols: list[_Column],
    bad_rows: list[tuple[int, str]],
    label_column: str | None,
    skip_corrupt: bool,
    where: str,
    name: str,
    row_fmt: str,
) -> Splits:
    names = [c.name for c in cols]
    if label_column is not None and label_column not in names:
        raise DataError(
            f"label column '{label_column}' is not a column of {where} (columns: "
            f"{', '.join(names[:20])}{', ...' if len(names) > 20 else ''}); give --label-column "
            "NAME with one of them"
        )
    n = len(cols[0].num if cols[0].num is not None else cols[0].text)
    rows = cols[0].rows if cols[0].rows is not None else np.arange(1, n + 1)
    bad = np.zeros(n, dtype=bool)
    first_bad: tuple[int, str] | None = None

    def flag(mask: np.ndarray, why) -> None:
        nonlocal first_bad
        idx = np.flatnonzero(mask)
        if len(idx):
            i = int(idx[0])
            if first_bad is None or rows[i] < first_bad[0]:
                first_bad = (int(rows[i]), why(i))
            bad[idx] = True

    features: list[tuple[str, np.ndarray | None, list | None]] = []
    y_text = None
    for c in cols:
        if c.name == label_column:
            y_text = [
                None
                if (v is None or (isinstance(v, float) and np.isnan(v)))
                else (_fmt(v) if not isinstance(v, str) else v)
                for v in (c.text if c.text is not None else c.num)
            ]
            y_text = [None if v is None or _missing(v) else v for v in y_text]
            continue
        if c.num is not None:
            vals = c.num
            flag(~np.isfinite(vals), lambda i, c=c: f"column '{c.name}': missing value")
            flag(_too_large(vals), lambda i, c=c, v=vals: _too_large_why(c.name, v[i]))
            features.append((c.name, vals, None))
            continue
        vals, ok = _parse_numbers(c.text)
        miss = np.array([_missing(s) for s in c.text])
        if ok.sum() >= max(1, 0.5 * (~miss).sum()):  # numeric, with possibly bad cells
            flag(miss, lambda i, c=c: f"column '{c.name}': missing value")
            flag(
                ~ok & ~miss,
                lambda i, c=c: f"column '{c.name}': text '{c.text[i]}' in a numeric column",
            )
            flag(_too_large(vals), lambda i, c=c, v=vals: _too_large_why(c.name, v[i]))
            features.append((c.name, vals, None))
        else:
            flag(miss, lambda i, c=c: f"column '{c.name}': missing value")
            features.append((c.name, None, c.text))
    if not features:
        raise DataError(f"{where} has no feature columns besides the label column '{label_column}'")
    if first_bad is not None and not skip_corrupt:
        raise DataError(
            f"{where}: {row_fmt.format(r=first_bad[0])}, {first_bad[1]}; fix it or pass "
            "--skip-corrupt to skip bad rows"
        )
    keep = np.flatnonzero(~bad)
    skipped = len(bad_rows) + int(bad.sum())
    if len(keep) == 0:
        raise DataError(
            f"{where}: every row is bad (e.g. "
            f"{first_bad[1] if first_bad else 'wrong field count'}); nothing is left to train on"
        )
    y = classes = None
    if y_text is not None:
        labels = [y_text[i] for i in keep]
        present = sorted({v for v in labels if v is not None}, key=_label_key)
        code = {v: i for i, v in enumerate(present)}
        y = np.array([code[v] if v is not None else -1 for v in labels], dtype=np.int64)
        classes = present
    if y is not None and (y >= 0).any():
        tr, te = stratified_split(y, TEST_FRACTION, seed=0)
        if len(te) == 0 or len(tr) == 0:
            raise DataError(
                f"{where}: {len(keep)} row(s) in {len(classes or [])} label class(es) are too few "
                f"to hold out a {TEST_FRACTION:.0%} test split (no class has two rows); give more "
                "rows per class, or another --label-column"
            )
    else:
        tr, te = np.arange(len(keep)), None
    splits = _encode(features, keep, tr, te, y, classes, name)
    ids = np.asarray(rows)[keep] - 1  # each kept row's index among the file's data rows (0-based)
    splits.train.info["ids"] = ids[tr].tolist()
    if splits.test is not None and te is not None:
        splits.test.info["ids"] = ids[te].tolist()
    if skipped:
        first = (
            bad_rows[0][1]
            if bad_rows
            else f"{where}: {row_fmt.format(r=first_bad[0])}, {first_bad[1]}"
            if first_bad
            else ""
        )
        warnings.warn(
            f"{name}: skipped {skipped} bad row(s) (--skip-corrupt), e.g. {first}",
            DataWarning,
            stacklevel=4,
        )
        splits.train.info["skipped"] = skipped
    return splits


def _fmt(v) -> str:
    f = float(v)
    return str(int(f)) if f == int(f) else str(f)


def _label_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _encode(features, keep, tr, te, y, classes, name) -> Splits:
    """Numeric columns as they are; categorical ones coded by the training rows' sorted
    vocabulary."""
    columns = [f[0] for f in features]
    categories: dict[str, list[str]] = {}
    x = np.empty((len(keep), len(features)), dtype=np.float32)
    for j, (col, num, text) in enumerate(features):
        if num is not None:
            x[:, j] = num[keep]
        else:
            vals = [text[i] for i in keep]
            vocab = sorted({vals[i] for i in tr})
            categories[col] = vocab
            code = {v: k for k, v in enumerate(vocab)}
            x[:, j] = [code.get(v, -1) for v in vals]

    def part(idx, suffix):
        return TableData(
            x[idx],
            None if y is None else y[idx],
            classes,
            f"{name}/{suffix}",
            {},
            columns,
            categories,
        )

    return Splits(part(tr, "train"), None if te is None else part(te, "test"))


def encode_table(
    source: str | Path | dict[str, Any], meta: dict, label_column: str | None = None
) -> np.ndarray:
    """Rows encoded for a saved encoder: float32 (N, F) with its columns in its order and its
    categories coded by its training vocabulary (an unseen category is -1).

    ``source``: a CSV/Parquet path or a mapping ``{column: values}``; ``meta``: the encoder's
    metadata (``load_encoder(run).meta``). A missing column is refused in one line.
    """
    if isinstance(source, dict):
        cols = [
            _Column(k, text=[None if v is None else str(v) for v in vals])
            for k, vals in source.items()
        ]
    else:
        p = Path(source)
        cols = (
            _read_parquet(p)
            if p.suffix.lower() in (".parquet", ".pq")
            else _read_csv(p, "\t" if p.suffix.lower() == ".tsv" else ",", False)[0]
        )
    by_name = {c.name: c for c in cols}
    missing = [c for c in meta["columns"] if c not in by_name]
    if missing:
        raise DataError(
            f"the encoder needs column(s) {', '.join(missing)}, which the rows do not have"
        )
    n = len(next(iter(by_name.values())).text or []) or len(next(iter(by_name.values())).num)
    x = np.empty((n, len(meta["columns"])), dtype=np.float32)
    cats = meta.get("categories", {})
    for j, col in enumerate(meta["columns"]):
        c = by_name[col]
        if col in cats:
            code = {v: k for k, v in enumerate(cats[col])}
            text = c.text if c.text is not None else [_fmt(v) for v in c.num]
            x[:, j] = [code.get(v.strip() if isinstance(v, str) else v, -1) for v in text]
        else:
            vals = c.num if c.num is not None else _parse_numbers(c.text)[0]
            if not np.isfinite(vals).all():
                i = int(np.flatnonzero(~np.isfinite(vals))[0])
                raise DataError(f"row {i + 1}, column '{col}': missing or non-numeric value")
            x[:, j] = vals
    return x


def table_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> Splits:
    """An ``.npz`` table: ``x`` (N, F) numbers, optional ``y``, ``x_test``/``y_test`` and
    ``columns``."""
    name = path.stem
    columns = [str(c) for c in arrays["columns"]] if "columns" in arrays else []

    def part(xk, yk):
        x = arrays[xk]
        y = arrays.get(yk)
        if y is not None and (y.ndim != 1 or len(y) != len(x)):
            raise DataError(
                f"'{path}': array '{yk}' has shape {tuple(y.shape)} but '{xk}' has {len(x)} rows; "
                "give one integer label per row"
            )
        return TableData(x, y, None, f"{name}/{xk}", {}, list(columns))

    train = part("x", "y")
    test = None
    if "x_test" in arrays:
        if arrays["x_test"].ndim != 2 or arrays["x_test"].shape[1] != train.channels:
            raise DataError(
                f"'{path}': 'x_test' has shape {tuple(arrays['x_test'].shape)} but 'x' has "
                f"{train.channels} columns; give x_test as (N, F) with the same columns"
            )
        test = part("x_test", "y_test")
    return Splits(train, test)


def _sklearn(loader, name: str) -> Splits:
    d = loader()
    x = np.asarray(d.data, dtype=np.float32)
    y = np.asarray(d.target, dtype=np.int64)
    tr, te = stratified_split(y, TEST_FRACTION, seed=0)
    cols = [str(c) for c in d.feature_names]
    classes = [str(c) for c in d.target_names]
    return Splits(
        TableData(x[tr], y[tr], classes, f"{name}/train", {"ids": tr.tolist()}, cols),
        TableData(x[te], y[te], classes, f"{name}/test", {"ids": te.tolist()}, cols),
    )


def load_breast_cancer() -> Splits:
    """Wisconsin diagnostic breast cancer (569 rows, 30 numeric features, malignant/benign), as
    shipped inside scikit-learn; a fixed stratified 80/20 split."""
    from sklearn.datasets import load_breast_cancer as f

    return _sklearn(f, "breast_cancer")


def load_wine() -> Splits:
    """UCI wine recognition (178 rows, 13 numeric features, 3 cultivars), as shipped inside
    scikit-learn; a fixed stratified 80/20 split."""
    from sklearn.datasets import load_wine as f

    return _sklearn(f, "wine")


def align_categories(splits: Splits | None, ref) -> Splits | None:
    """Tables loaded separately (``--eval-data``) re-coded with ``ref``'s category vocabularies
    (a category ``ref`` never had becomes -1); any other data is returned as it is."""
    if splits is None or not isinstance(ref, TableData):
        return splits

    def one(d):
        if not isinstance(d, TableData):
            return d
        if list(d.columns) != list(ref.columns):
            raise DataError(
                f"evaluation table '{d.name}' has columns {', '.join(d.columns[:8])} but the "
                f"training table has {', '.join(ref.columns[:8])}; give a table "
                "with the same columns"
            )
        x = d.x.copy()
        for j, col in enumerate(d.columns):
            if col in d.categories or col in ref.categories:
                old = d.categories.get(col, [])
                code = {v: k for k, v in enumerate(ref.categories.get(col, []))}
                lut = np.array([code.get(v, -1) for v in old] + [-1], dtype=np.float32)
                x[:, j] = lut[np.where(x[:, j] >= 0, x[:, j], len(old)).astype(np.int64)]
        import dataclasses

        return dataclasses.replace(d, x=x, categories=dict(ref.categories))

    return Splits(one(splits.train), one(splits.test))
