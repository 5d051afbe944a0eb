"""Text from Parquet files: written with pyarrow, or pandas with fastparquet; skipped (never
failed) where neither engine is installed. The missing-engine message runs everywhere."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from selfsup.data import load_source
from selfsup.data.text import TextData, make_topics
from selfsup.errors import DataError

HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None
HAVE_FASTPARQUET = (
    importlib.util.find_spec("fastparquet") is not None
    and importlib.util.find_spec("pandas") is not None
)
needs_engine = pytest.mark.skipif(
    not (HAVE_PYARROW or HAVE_FASTPARQUET),
    reason="no Parquet engine (pyarrow, or pandas with fastparquet) installed",
)


def _write(path: Path, cols: dict[str, list]) -> Path:
    if HAVE_PYARROW:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(cols), path)
    else:
        import pandas as pd

        pd.DataFrame(cols).to_parquet(path, engine="fastparquet")
    return path


ROWS = make_topics(50)
ODD = ["naïve café ☕ — 数字", "", None]  # non-ASCII, empty, null


@needs_engine
def test_a_labelled_parquet_file_is_text_split_80_20(tmp_path):
    texts = [t for t, _ in ROWS] + ODD
    labels = [k for _, k in ROWS] + ["space", "music", "sport"]
    p = _write(tmp_path / "t.parquet", {"text": texts, "topic": labels, "n": list(range(53))})
    with pytest.warns(UserWarning, match="2 empty text"):
        s = load_source(str(p), label_column="topic", options={"text_column": "text"})
    assert isinstance(s.train, TextData) and len(s.train) + len(s.test) == 51
    assert s.train.classes == sorted({k for _, k in ROWS})
    got = set(s.train.texts) | set(s.test.texts)
    assert got == {t for t, _ in ROWS} | {ODD[0]}  # the UTF-8 text round-trips exactly
    with pytest.raises(DataError, match="no column 'body'.*text, topic, n"):
        load_source(str(p), options={"text_column": "body"})


@needs_engine
def test_two_text_columns_of_a_parquet_file_are_a_pair(tmp_path):
    texts = [t for t, _ in ROWS]
    p = _write(tmp_path / "p.pq", {"q": texts, "a": [t[::-1] for t in texts]})
    s = load_source(str(p), options={"text_column": "q", "pair_column": "a"})
    d = s.train
    assert isinstance(d.a, TextData) and isinstance(d.b, TextData) and len(d) == 50
    assert all(b == a[::-1] for a, b in zip(d.a.texts, d.b.texts, strict=True))


@needs_engine
def test_a_file_that_is_not_parquet_is_one_line(tmp_path):
    p = tmp_path / "bad.parquet"
    p.write_bytes(b"text,topic\nnot parquet,a\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_source(str(p), options={"text_column": "text"})


def test_without_an_engine_the_message_names_the_extra(tmp_path, monkeypatch):
    for mod in ("pyarrow", "pyarrow.parquet", "fastparquet"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ImportError
    p = tmp_path / "t.parquet"
    p.write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"needs pyarrow.*selfsup\[tabular\]"):
        load_source(str(p), options={"text_column": "text"})
