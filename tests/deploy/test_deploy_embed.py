"""selfsup embed: one row per input, in input order, equal to encoder(x) on the same batch; the
error paths write nothing."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data.table import encode_table
from selfsup.views import eval_view


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def test_embed_image_folder_in_input_order(runs, tmp_path):
    from PIL import Image

    enc = selfsup.load_encoder(runs["image"])
    digits = selfsup.data.load_source("digits").test
    root = tmp_path / "imgs"
    names = []
    for i in range(12):  # class folders; names sort differently from their creation order
        rel = f"c{digits.y[i]}/img-{11 - i:02d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.x[i, :, :, 0]).save(root / rel)
        names.append(rel)
    out = tmp_path / "e.csv"
    e = selfsup.embed(runs["image"], str(root), out)
    order = sorted(names, key=lambda n: (n.split("/")[0], n))
    assert e.ids == order and len(e.ids) == 12
    x = torch.from_numpy(
        np.stack([np.asarray(Image.open(root / n))[:, :, None] for n in order])
    ).permute(0, 3, 1, 2)
    with torch.no_grad():
        direct = enc(eval_view(x, enc.meta["image_size"])).numpy()
    np.testing.assert_allclose(e.features, direct, rtol=0, atol=1e-5)
    ids, feats = _read_csv(out)
    assert ids == order
    np.testing.assert_allclose(feats, direct, rtol=0, atol=1e-5)


def test_embed_csv_rows_in_file_order(runs, tmp_path):
    enc = selfsup.load_encoder(runs["table"])
    wine = selfsup.data.load_source("wine")
    cols = enc.meta["columns"]
    x = np.concatenate([wine.test.x[:7], wine.train.x[:9]])
    y = np.concatenate([wine.test.y[:7], wine.train.y[:9]])
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*cols, "label"])
        for row, lab in zip(x, y):
            w.writerow([*(repr(float(v)) for v in row), f"class{lab}"])
    out = tmp_path / "e.npy"
    e = selfsup.embed(runs["table"], str(path), out, label_column="label")
    assert e.ids == list(range(16))  # every row once, in file order, though the file is split
    with torch.no_grad():
        direct = enc(torch.from_numpy(encode_table(path, enc.meta))).numpy()
    np.testing.assert_allclose(np.load(out), direct, rtol=0, atol=1e-5)


@pytest.mark.parametrize("modality", ["timeseries", "graph", "paired"])
def test_embed_every_modality(runs, sources, modality):
    e = selfsup.embed(runs[modality], sources[modality])
    assert e.features.ndim == 2 and np.isfinite(e.features).all()
    assert len(e.ids) == len(set(map(str, e.ids)))  # each sample once


def test_embed_cli(runs, tmp_path, cli):
    out = tmp_path / "digits.csv"
    code, stdout, err = cli("embed", str(runs["image"]), "--data", "digits", "--out", str(out))
    assert code == 0, err
    ids, feats = _read_csv(out)
    assert len(ids) == 1797 and ids[0] == "train/0" and feats.shape[1] > 0
    code, _, err = cli("embed", str(runs["image"]), "--data", "digits", "--out", str(out))
    assert code == 2 and "--overwrite" in err  # an existing file is kept


def _one_line_error(cli, *argv):
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_embed_errors_write_nothing(runs, tmp_path, cli):
    out = tmp_path / "e.csv"
    err = _one_line_error(
        cli, "embed", str(tmp_path / "nope"), "--data", "digits", "--out", str(out)
    )
    assert "does not exist" in err
    no_encoder = tmp_path / "run-without-encoder"
    no_encoder.mkdir()
    shutil.copy(runs["image"] / "config.yaml", no_encoder / "config.yaml")
    err = _one_line_error(cli, "embed", str(no_encoder), "--data", "digits", "--out", str(out))
    assert "no encoder" in err
    err = _one_line_error(cli, "embed", str(runs["image"]), "--data", "wine", "--out", str(out))
    assert "table data but the encoder takes image data" in err
    err = _one_line_error(
        cli, "embed", str(runs["image"]), "--data", "digits", "--out", str(tmp_path / "e.txt")
    )
    assert ".npy" in err
    assert not out.exists()


def test_embed_refuses_a_classifier_folder(runs, tmp_path, cli):
    selfsup.finetune(runs["table"], "wine", tmp_path / "clf", epochs=1)
    out = tmp_path / "e.csv"
    err = _one_line_error(cli, "embed", str(tmp_path / "clf"), "--data", "wine", "--out", str(out))
    assert "classifier folder" in err and "selfsup predict" in err
    assert not out.exists()


def test_parquet_needs_pyarrow_or_writes_ids(runs, tmp_path):
    out = tmp_path / "e.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        with pytest.raises(selfsup.SelfSupError, match=r"selfsup\[tabular\]"):
            selfsup.embed(runs["table"], "wine", out)
        assert not out.exists()
        return
    e = selfsup.embed(runs["table"], "wine", out)
    t = pq.read_table(out)
    assert t.column_names[0] == "id" and t.column("id").to_pylist() == e.ids
