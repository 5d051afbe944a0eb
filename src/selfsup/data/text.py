"""Text: containers of UTF-8 texts and their sources (``--data FILE --text-column NAME``).

A :class:`TextData` holds each text as its UTF-8 bytes, zero-padded into a uint8 (N, L) array
(so the one training loop indexes it like any other modality); the modality tokenises a batch
when it makes views or evaluation inputs (:mod:`selfsup.modalities.text`).

Sources:

- ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.parquet`` with ``--text-column NAME`` (and optionally
  ``--label-column NAME``). Without ``--text-column`` a CSV or Parquet file is a table
  (:mod:`selfsup.data.table`); with it, it is text. A labelled file is split once, stratified by
  label, into 80% training and 20% test rows (seed 0), as tables are; a row without a label is
  unlabelled (-1);
- ``.txt``: one text per line, unlabelled.

Bad input, in one line: a missing column names the columns there are; bytes that are not UTF-8
are refused with the line they are on (``--skip-corrupt`` replaces them with U+FFFD and counts
the rows); empty texts are skipped and counted; texts longer than :data:`MAX_BYTES` bytes are
cut there and counted (the tokeniser keeps far fewer tokens anyway). Each count is one warning
line.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError, DataWarning
from .base import Samples, Splits, stratified_split

TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet", ".pq", ".txt")
#: bytes kept of each text (a longer one is cut at a character boundary and counted)
MAX_BYTES = 4096
TEST_FRACTION = 0.2


@dataclass
class TextData(Samples):
    """Texts as UTF-8 bytes, uint8 (N, L), each zero-padded after its last byte."""

    modality: ClassVar[str] = "text"

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.uint8:
            raise DataError(
                f"{self.name}: texts must be a uint8 (N, L) array of UTF-8 bytes (use "
                f"selfsup.data.text.encode_texts), got {getattr(x, 'shape', type(x).__name__)}"
            )
        if len(x) == 0:
            raise DataError(f"{self.name}: there are no texts; give at least one")

    @property
    def channels(self) -> int:
        return 1

    @property
    def texts(self) -> list[str]:
        return decode_texts(self.x)


def encode_texts(texts: list[str], max_bytes: int = MAX_BYTES) -> tuple[np.ndarray, int]:
    """``(uint8 (N, L) zero-padded UTF-8 bytes, number of texts cut at max_bytes)``."""
    raw = [t.replace("\x00", " ").encode("utf-8") for t in texts]
    cut = 0
    for i, b in enumerate(raw):
        if len(b) > max_bytes:
            raw[i] = b[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")
            cut += 1
    width = max((len(b) for b in raw), default=1) or 1
    x = np.zeros((len(raw), width), np.uint8)
    for i, b in enumerate(raw):
        x[i, : len(b)] = np.frombuffer(b, np.uint8)
    return x, cut


def decode_texts(x) -> list[str]:
    """The texts of a uint8 (N, L) byte array or tensor (:func:`encode_texts`)."""
    a = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.uint8)
    return [bytes(r).rstrip(b"\x00").decode("utf-8", errors="replace") for r in a]


def make_texts(
    texts: list[str],
    labels: list | None,
    name: str,
    info: dict | None = None,
) -> Splits:
    """Texts (and labels, None for unlabelled) as :class:`Splits`: empty texts dropped and counted,
    long ones cut and counted; a labelled set split once, stratified 80/20."""
    info = dict(info or {})
    keep = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    empty = len(texts) - len(keep)
    if not keep:
        raise DataError(f"{name}: every text is empty; give a column or file with text in it")
    ids = [int(i) for i in keep]
    x, cut = encode_texts([str(texts[i]) for i in keep])
    for what, n in (("empty text(s) skipped", empty), (f"text(s) cut at {MAX_BYTES} bytes", cut)):
        if n:
            warnings.warn(f"{name}: {n} {what}", DataWarning, stacklevel=3)
    info.update({"skipped": empty, "truncated": cut})
    if labels is None:
        return Splits(TextData(x, None, None, name, {**info, "ids": ids}))
    lab = [labels[i] for i in keep]
    missing = {"", "nan", "none", "null", "na"}
    present = [v for v in lab if v is not None and str(v).strip().lower() not in missing]
    values = sorted({str(v).strip() for v in present}, key=_sort_key)
    index = {v: k for k, v in enumerate(values)}
    y = np.array(
        [
            -1 if v is None or str(v).strip().lower() in missing else index[str(v).strip()]
            for v in lab
        ],
        dtype=np.int64,
    )
    labelled = np.flatnonzero(y >= 0)
    if len(values) < 2:
        raise DataError(
            f"{name}: the label column has {len(values)} distinct value(s); give at least two "
            "classes, or drop --label-column"
        )
    a, b = stratified_split(y[labelled], TEST_FRACTION, 0)
    train_idx = np.sort(np.concatenate([labelled[a], np.flatnonzero(y < 0)]))
    test_idx = np.sort(labelled[b])
    full = TextData(x, y, values, name, {**info, "ids": ids})
    return Splits(full.subset(train_idx, name + "[80%]"), full.subset(test_idx, name + "[20%]"))


def _sort_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _decode(raw: bytes, path: Path, skip_corrupt: bool) -> tuple[str, int]:
    """The file's text (BOM dropped) and how many lines had undecodable bytes."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        if not skip_corrupt:
            raise DataError(
                f"'{path}' is not UTF-8 (an undecodable byte on line {line}); convert it (iconv -t "
                "UTF-8) or pass --skip-corrupt to replace such bytes"
            ) from None
        bad = sum(1 for ln in raw.split(b"\n") if _undecodable(ln))
        warnings.warn(
            f"'{path}': {bad} line(s) had undecodable bytes, replaced (--skip-corrupt)",
            DataWarning,
            stacklevel=4,
        )
        return raw.decode("utf-8", errors="replace"), bad


def _undecodable(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def _column(rows: dict[str, list], key: str, what: str, path: Path) -> list:
    if key not in rows:
        raise DataError(
            f"'{path}' has no column '{key}' ({what}); its columns are: {', '.join(rows) or 'none'}"
        )
    return rows[key]


def load_text(
    path: Path,
    text_column: str | None,
    label_column: str | None = None,
    skip_corrupt: bool = False,
) -> Splits:
    """A text file as :class:`Splits` (see the module docstring)."""
    if not path.is_file():
        raise DataError(f"text file '{path}' does not exist; give the path of a text file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if label_column:
            raise DataError(
                f"'{path}' is a .txt file (one unlabelled text per line); --label-column needs a "
                ".csv, .tsv, .jsonl or .parquet file"
            )
        text, _ = _decode(path.read_bytes(), path, skip_corrupt)
        return make_texts(text.splitlines(), None, path.stem)
    if not text_column:
        raise DataError(f"'{path}': name the column that holds the texts with --text-column")
    if suffix in (".parquet", ".pq"):
        rows = _read_parquet(path)
    else:
        text, _ = _decode(path.read_bytes(), path, skip_corrupt)
        rows = _read_jsonl(text, path) if suffix == ".jsonl" else _read_csv(text, suffix, path)
    texts = _column(rows, text_column, "--text-column", path)
    labels = None if label_column is None else _column(rows, label_column, "--label-column", path)
    return make_texts(texts, labels, path.stem)


def _read_csv(text: str, suffix: str, path: Path) -> dict[str, list]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"'{path}' is empty; give a header row, then one row per text")
        header = [h.strip() for h in header]
        cols: dict[str, list] = {h: [] for h in header}
        for r, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(
                    f"'{path}', row {r}: {len(row)} field(s) where the header has {len(header)}; "
                    "quote texts that hold the delimiter"
                )
            for h, v in zip(header, row, strict=True):
                cols[h].append(v)
    except csv.Error as err:
        raise DataError(f"'{path}' is not a valid CSV file ({err})") from None
    return cols


def _read_jsonl(text: str, path: Path) -> dict[str, list]:
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"'{path}', line {i}: not a JSON object ({err.msg})") from None
        if not isinstance(rec, dict):
            raise DataError(f"'{path}', line {i}: a JSON Lines record must be an object")
        records.append(rec)
    keys: dict[str, None] = {}
    for rec in records:
        keys.update(dict.fromkeys(rec))
    return {k: [rec.get(k) for rec in records] for k in keys}


def _read_parquet(path: Path) -> dict[str, list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading '{path}' needs pyarrow; install the tabular extra (pip install "
            "'selfsup[tabular]') or save the texts as CSV or JSON Lines"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001  (pyarrow raises many kinds)
        raise DataError(f"'{path}' is not a readable Parquet file ({type(err).__name__})") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


# -- a generated corpus for tests, tutorials and benchmarks --------------------------------------
TOPICS = {
    "space": "orbit rocket planet star galaxy telescope moon launch astronaut comet",
    "cooking": "recipe oven flour butter garlic simmer spice bake onion sauce",
    "sport": "match goal team score coach season league striker referee stadium",
    "music": "guitar melody chorus album concert drummer rhythm song band tempo",
    "health": "doctor clinic patient vaccine symptom therapy nurse diet fever sleep",
}
FILLER = (
    "the a of to and in is was for on with that it as at by this from we they our new "
    "about after before very more some many today still over"
).split()


def make_topics(n: int = 1500, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` short synthetic texts about five topics, ``(text, topic)``: each mixes filler words,
    words of its topic and, with probability 0.3 each, words of another topic (so no single word
    decides the class). Generated: no labelled text set ships inside a registry package this
    project may use (see ``docs/tutorials/text.md``)."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    words = {k: v.split() for k, v in TOPICS.items()}
    out = []
    for i in range(n):
        k = names[i % len(names)]
        length = int(rng.integers(8, 20))
        toks = []
        for _ in range(length):
            r = rng.random()
            if r < 0.3:
                toks.append(str(rng.choice(words[k])))
            elif r < 0.42:
                toks.append(str(rng.choice(words[names[int(rng.integers(len(names)))]])))
            else:
                toks.append(str(rng.choice(FILLER)))
        out.append((" ".join(toks).capitalize() + ".", k))
    return out
