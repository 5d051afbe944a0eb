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
    """The columns of a Parquet file as lists, read with pyarrow (the ``tabular`` extra), or with
    pandas and fastparquet where pyarrow is not installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is None:
        try:
            import fastparquet  # noqa: F401  (pandas' other Parquet engine)
            import pandas as pd
        except ImportError:
            raise DataError(
                f"reading '{path}' needs pyarrow; install the tabular extra (pip install "
                "'selfsup[tabular]') or save the texts as CSV or JSON Lines"
            ) from None
        try:
            df = pd.read_parquet(path, engine="fastparquet")
        except Exception as err:  # noqa: BLE001  (fastparquet raises many kinds)
            raise DataError(
                f"'{path}' is not a readable Parquet file ({type(err).__name__})"
            ) from None
        return {str(c): [None if v != v else v for v in df[c].tolist()] for c in df.columns}
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


# -- paired: text as one member (or both) of the same samples ------------------------------------
def claims_paired_npz(spec: str, path: Path) -> bool:
    """A paired ``.npz`` (``x_a``, ``x_b``) where either member is an array of strings."""
    from .npz import has_string_member

    return has_string_member(path)


def _texts_of(x: np.ndarray, where: str) -> list[str]:
    if x.ndim != 1:
        raise DataError(
            f"{where} is a string array of shape {tuple(x.shape)}; a text member is one string "
            "per sample, shape (N,)"
        )
    return [str(t) for t in x]


def paired_texts(
    a: list[str] | Samples,
    b: list[str] | Samples,
    y: np.ndarray | None,
    name: str,
    where: str,
):
    """A :class:`~selfsup.data.paired.PairedData` of two members, either given as a list of texts
    (a :class:`TextData`) or as a container; a row whose text is empty is dropped from both members
    and counted (one warning), long texts cut and counted as in :func:`make_texts`."""
    from .paired import PairedData

    n = len(a)
    if len(b) != n:
        raise DataError(
            f"{where}: the two members have {len(a)} and {len(b)} samples; give the same samples "
            "in both, in the same order"
        )
    texts = [m for m in (a, b) if isinstance(m, list)]
    keep = np.array(
        [i for i in range(n) if all(t[i] is not None and str(t[i]).strip() for t in texts)],
        dtype=np.int64,
    )
    if len(keep) == 0:
        raise DataError(f"{where}: every pair has an empty text; give texts in the text member")
    cut = 0

    def member(m, tower: str) -> Samples:
        nonlocal cut
        if not isinstance(m, list):
            return m if len(keep) == n else m.subset(keep)
        x, c = encode_texts([str(m[int(i)]) for i in keep])
        cut += c
        return TextData(x, None, None, f"{name}[{tower}]")

    ma, mb = member(a, "a"), member(b, "b")
    for what, k in (("pair(s) with an empty text skipped", n - len(keep)),
                    (f"text(s) cut at {MAX_BYTES} bytes", cut)):  # fmt: skip
        if k:
            warnings.warn(f"{where}: {k} {what}", DataWarning, stacklevel=3)
    if y is not None:
        y = np.asarray(y)[keep]
    return PairedData(ma, mb, y, None, name, {"skipped": n - len(keep), "truncated": cut})


def load_paired_npz(spec: str, options=None, **_) -> Splits:
    """``x_a``, ``x_b`` (+ ``y``, ``x_a_test``, ``x_b_test``, ``y_test``) where a member is an
    array of strings (N,) (``numpy.array(list_of_str)``, saved without pickles): that member is
    text; the other is read as :mod:`selfsup.data.paired` reads it (images, series), as sound
    where ``sr_a`` / ``sr_b`` is given (:mod:`selfsup.data.audio`), or is text too. A pair whose
    text is empty is dropped and counted."""
    from .audio import _max_seconds, _rate, sound_member
    from .paired import load_paired_npz as load_pairs

    options = options or {}
    path = Path(spec).expanduser()
    sr, max_s = _rate(options), _max_seconds(options)

    def member(tower: str, key: str, arrays: dict):
        x = arrays[key]
        if x.dtype.kind == "U":
            return _texts_of(x, f"'{path}': array '{key}'")
        return sound_member(path, tower, key, arrays, sr, max_s)

    def assemble(a, b, y, name: str):
        return paired_texts(a, b, y, name, f"'{path}'")

    return load_pairs(path, member=member, assemble=assemble)


def load_paired_table(
    path: Path,
    text_column: str,
    pair_column: str,
    label_column: str | None = None,
    skip_corrupt: bool = False,
) -> Splits:
    """Two text columns of a .csv/.tsv/.jsonl/.parquet file as a paired text-text source (a title
    and its abstract, a question and its answer); a labelled file split 80/20 as :func:`load_text`
    splits it, an unlabelled one kept whole."""
    if text_column == pair_column:
        raise DataError(
            f"--pair-column '{pair_column}' is also the --text-column; name two different columns"
        )
    rows = _read_rows(path, skip_corrupt)
    a = list(_column(rows, text_column, "--text-column", path))
    b = list(_column(rows, pair_column, "--pair-column", path))
    y = None
    classes = None
    if label_column is not None:
        lab = _column(rows, label_column, "--label-column", path)
        missing = {"", "nan", "none", "null", "na"}
        values = sorted(
            {
                str(v).strip()
                for v in lab
                if v is not None and str(v).strip().lower() not in missing
            },
            key=_sort_key,
        )
        if len(values) < 2:
            raise DataError(
                f"'{path}': the label column has {len(values)} distinct value(s); give at least "
                "two classes, or drop --label-column"
            )
        index = {v: k for k, v in enumerate(values)}
        y = np.array(
            [
                -1 if v is None or str(v).strip().lower() in missing else index[str(v).strip()]
                for v in lab
            ],
            dtype=np.int64,
        )
        classes = values
    full = paired_texts(a, b, y, path.stem, f"'{path}'")
    full.classes = classes
    if full.y is None:
        return Splits(full)
    labelled = np.flatnonzero(full.y >= 0)
    tr, te = stratified_split(full.y[labelled], TEST_FRACTION, 0)
    train_idx = np.sort(np.concatenate([labelled[tr], np.flatnonzero(full.y < 0)]))
    return Splits(
        full.subset(train_idx, path.stem + "[80%]"),
        full.subset(np.sort(labelled[te]), path.stem + "[20%]"),
    )


def _read_rows(path: Path, skip_corrupt: bool) -> dict[str, list]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix == ".txt":
        raise DataError(
            f"'{path}' is a .txt file (one text per line); --pair-column needs a .csv, .tsv, "
            ".jsonl or .parquet file with two text columns"
        )
    text, _ = _decode(path.read_bytes(), path, skip_corrupt)
    return _read_jsonl(text, path) if suffix == ".jsonl" else _read_csv(text, suffix, path)


# -- a generated image-text set: digits and their descriptions ----------------------------------
NUMBERS = "zero one two three four five six seven eight nine".split()


def describe_digits(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[str]:
    """A short description of each digit image (N, H, W[, 1]) from what can be measured in it:
    its class (as a word or a numeral), the stroke weight (mean ink), the slant (the sign and size
    of the ink's row-column covariance), the width (the ink's column spread) and the height (the
    ink's centre row), each attribute cut at its terciles over ``images``; the wording varies
    (templates and synonyms, chosen with ``seed``). So two digits of one class mostly get
    different descriptions, and an image's own description is findable among its class's."""
    rng = np.random.default_rng(seed)
    g = images.reshape(len(images), images.shape[1], images.shape[2]).astype(np.float64)
    mass = g.sum((1, 2)) + 1e-9
    rows, cols = np.mgrid[0 : g.shape[1], 0 : g.shape[2]].astype(np.float64)
    r0 = (g * rows).sum((1, 2)) / mass
    c0 = (g * cols).sum((1, 2)) / mass
    dr, dc = rows[None] - r0[:, None, None], cols[None] - c0[:, None, None]
    width = np.sqrt((g * dc**2).sum((1, 2)) / mass)
    slant = -(g * dr * dc).sum((1, 2)) / mass  # > 0: the top lies to the right
    ink = g.mean((1, 2))

    def tercile(v: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.quantile(v, [1 / 3, 2 / 3]), v)

    words = {
        "ink": (["thin", "light", "faint"], ["", "", ""], ["bold", "thick", "heavy"]),
        "slant": (
            ["leaning left", "slanted to the left", "tilted left"],
            ["upright", "straight", "standing straight"],
            ["leaning right", "slanted to the right", "tilted right"],
        ),
        "width": (["narrow", "slim", "thin-bodied"], ["", "", ""], ["wide", "broad", "round"]),
        "height": (["written high", "near the top", "placed high"], ["", "", ""],
                   ["written low", "near the bottom", "placed low"]),
    }  # fmt: skip
    levels = {
        "ink": tercile(ink),
        "slant": tercile(slant),
        "width": tercile(width),
        "height": tercile(r0),
    }
    out = []
    for i in range(len(g)):
        pick = {k: str(rng.choice(words[k][int(levels[k][i])])) for k in words}
        digit = NUMBERS[int(labels[i])] if rng.random() < 0.5 else f"digit {int(labels[i])}"
        adjectives = [w for w in (pick["ink"], pick["width"]) if w]
        extras = [w for w in (pick["slant"], pick["height"]) if w]
        rng.shuffle(extras)
        lead = str(rng.choice(["a", "a handwritten", "a sketch of a", "a scan of a"]))
        text = " ".join([lead, *adjectives, digit])
        if extras:
            text += ", " + " and ".join(extras)
        out.append(" ".join(text.split()))
    return out


def load_digits_captions() -> Splits:
    """The built-in ``digits_captions``: scikit-learn's digits (member ``a``, images, the split of
    ``digits``) paired with generated descriptions (member ``b``, text; :func:`describe_digits`),
    labelled by digit. An image-text set for cross-modal retrieval with ``clip``."""
    from .digits import load_digits
    from .paired import PairedData

    s = load_digits()
    assert s.test is not None
    x = np.concatenate([s.train.x, s.test.x])
    y = np.concatenate([s.train.y, s.test.y])
    texts = describe_digits(x, y)
    out = []
    for d, part in ((s.train, texts[: len(s.train)]), (s.test, texts[len(s.train) :])):
        t, _ = encode_texts(part)
        name = d.name.replace("digits", "digits_captions")
        out.append(PairedData(d, TextData(t, None, None, name + "[text]"), d.y, d.classes, name))
    return Splits(out[0], out[1])
