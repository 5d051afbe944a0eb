"""Table sources: CSV, Parquet, npz, built-ins; label column; bad rows; vocabularies of the training
rows."""

import warnings

import numpy as np
import pytest

from selfsup.data import load_source
from selfsup.data.table import align_categories, encode_table
from selfsup.errors import DataError, DataWarning

HEADER = "size,weight,color,label\n"


def write_csv(path, rows, header=HEADER):
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def good_rows(n=20):
    colors = ["red", "blue", "green"]
    return [f"{i},{i * 0.5},{colors[i % 3]},{'a' if i % 2 else 'b'}" for i in range(n)]


def test_csv_numeric_categorical_and_label(tmp_path):
    s = load_source(str(write_csv(tmp_path / "t.csv", good_rows())), label_column="label")
    tr, te = s.train, s.test
    assert tr.columns == ["size", "weight", "color"] and tr.classes == ["a", "b"]
    assert len(tr) == 16 and len(te) == 4 and tr.x.dtype == np.float32
    assert tr.categories == {"color": ["blue", "green", "red"]}
    assert set(np.unique(tr.x[:, 2])) <= {0, 1, 2}
    assert sorted(np.bincount(tr.y).tolist()) == [8, 8]


def test_unlabelled_csv_is_all_training_rows(tmp_path):
    s = load_source(
        str(
            write_csv(
                tmp_path / "t.csv",
                [r.rsplit(",", 1)[0] for r in good_rows()],
                "size,weight,color\n",
            )
        )
    )
    assert s.test is None and s.train.y is None and len(s.train) == 20


def test_vocabulary_is_fitted_on_training_rows_only(tmp_path):
    rows = good_rows(40)
    rows[0] = "0,0,purple,b"  # a single row: a stratified split may put it in either part
    s = load_source(str(write_csv(tmp_path / "t.csv", rows)), label_column="label")
    in_train = any("purple" in v for v in s.train.categories["color"])
    assert in_train == (s.test.x[:, 2] >= 0).all()
    if not in_train:
        assert (s.test.x[:, 2] == -1).sum() == 1


def test_missing_label_column(tmp_path):
    with pytest.raises(DataError, match="label column 'kind' is not a column"):
        load_source(str(write_csv(tmp_path / "t.csv", good_rows())), label_column="kind")


@pytest.mark.parametrize(
    "bad,needle",
    [
        ("3,1.5,red", "row 4 (line 5), column 'label': the row has 3 fields but the header has 4"),
        ("3,heavy,red,a", "row 4, column 'weight': text 'heavy' in a numeric column"),
        ("3,NaN,red,a", "row 4, column 'weight': missing value"),
        ("3,,red,a", "row 4, column 'weight': missing value"),
    ],
)
def test_bad_rows_refused_or_skipped(tmp_path, bad, needle):
    rows = good_rows()
    rows[3] = bad
    p = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError) as e:
        load_source(str(p), label_column="label")
    assert needle in str(e.value) and "t.csv" in str(e.value) and "\n" not in str(e.value)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = load_source(str(p), label_column="label", skip_corrupt=True)
    assert s.train.info["skipped"] == 1 and len(s.train) + len(s.test) == 19
    assert any(
        issubclass(x.category, DataWarning) and "skipped 1 bad row" in str(x.message) for x in w
    )


def test_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [r.split(",") for r in good_rows()]
    table = pa.table(
        {
            "size": [int(r[0]) for r in rows],
            "weight": [float(r[1]) for r in rows],
            "color": [r[2] for r in rows],
            "label": [r[3] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    a = load_source(str(tmp_path / "t.parquet"), label_column="label")
    b = load_source(str(write_csv(tmp_path / "t.csv", good_rows())), label_column="label")
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert a.train.categories == b.train.categories


def test_parquet_null_is_named(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": [1, 2, 3]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match="row 2, column 'a': missing value"):
        load_source(str(tmp_path / "n.parquet"))


def test_npz_table(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    np.savez(
        tmp_path / "t.npz",
        x=x,
        y=np.arange(30) % 2,
        x_test=x[:6],
        y_test=np.arange(6) % 2,
        columns=np.array(list("abcde")),
    )
    s = load_source(str(tmp_path / "t.npz"))
    assert s.train.modality == "table" and s.train.columns == list("abcde") and len(s.test) == 6


@pytest.mark.parametrize("name,shape,classes", [("breast_cancer", 30, 2), ("wine", 13, 3)])
def test_builtins(name, shape, classes):
    s = load_source(name)
    assert s.train.channels == shape and len(s.train.classes) == classes
    assert len(s.train) + len(s.test) in (569, 178)


def test_align_and_encode_with_training_vocabulary(tmp_path):
    train = load_source(str(write_csv(tmp_path / "a.csv", good_rows())), label_column="label")
    other = load_source(
        str(write_csv(tmp_path / "b.csv", ["1,1,green,a", "2,2,red,b", "3,3,teal,a", "4,4,red,b"])),
        label_column="label",
    )
    al = align_categories(other, train.train)
    vocab = train.train.categories["color"]  # blue, green, red
    name = {1: "green", 2: "red", 3: "teal", 4: "red"}
    for size, code in zip(
        al.train.x[:, 0], al.train.x[:, 2]
    ):  # its own training rows carry their names
        assert code == (vocab.index(name[int(size)]) if name[int(size)] in vocab else -1)
    assert al.train.categories == train.train.categories
    meta = {"columns": train.train.columns, "categories": train.train.categories}
    enc = encode_table({"size": [1], "weight": [0.5], "color": ["red"]}, meta)
    assert enc.tolist() == [[1.0, 0.5, 2.0]]
    with pytest.raises(DataError, match="color"):
        encode_table({"size": [1], "weight": [0.5]}, meta)
