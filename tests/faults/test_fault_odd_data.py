"""Odd data is loud: file names that are not UTF-8, stray images at the root of a class tree, float
images, labels out of range, special files as --data, and inputs a loaded encoder cannot take."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup import cli
from selfsup.data import load_source
from selfsup.data.cache import fingerprint
from selfsup.errors import ConfigError, DataError

TINY = [
    "--backbone",
    "convnet_small",
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.proj_dim=16",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--set",
    "train.progress=none",
    "--seed",
    "0",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
    "--set",
    "eval.baselines=false",
]


def _img(path: Path | str, seed: int) -> None:
    Image.fromarray((np.random.default_rng(seed).random((8, 8)) * 255).astype("uint8")).save(
        path, format="PNG"
    )


def _raw(root: Path, name: bytes) -> str:
    """The path of a file named by raw bytes (not UTF-8) under ``root``, as Python sees it."""
    return os.fsdecode(os.fsencode(root) + b"/" + name)


def class_tree(root: Path, per_class: int = 12) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            _img(root / c / f"{i}.png", hash((c, i)) % 1000)
    return root


# -- file names that are not UTF-8 -----------------------------------------------------------------

NON_UTF8 = {  # where the odd name is -> what it is
    "image_in_class": (b"a/\xff\xfe.png", "image"),
    "text_in_class": (b"b/notes\xe9.txt", "text"),
    "class_folder": (b"\xe9t\xe9", "folder"),
    "unlabelled_image": (b"\xff.png", "image"),
}


@pytest.mark.parametrize("case", sorted(NON_UTF8))
def test_a_file_name_that_is_not_utf8_is_loaded_or_skipped(case, tmp_path, capsys):
    name, kind = NON_UTF8[case]
    root = tmp_path / "data"
    if case == "unlabelled_image":
        root.mkdir()
        for i in range(20):
            _img(root / f"{i}.png", i)
    else:
        class_tree(root)
    p = _raw(root, name)
    if kind == "image":
        _img(p, 99)
    elif kind == "text":
        Path(p).write_text("not an image")
    else:
        Path(p).mkdir()
        for i in range(3):
            _img(Path(p) / f"{i}.png", 50 + i)
    fp = fingerprint(root, {})  # hashes the raw bytes of names
    assert len(fp) == 24
    n = {"image": 1, "text": 0, "folder": 3}[kind]
    base = 20 if case == "unlabelled_image" else 24
    assert len(load_source(str(root)).train) == base + n
    out = tmp_path / "run"
    code = cli.main(["train", "--data", str(root), "--out", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file()


def test_an_unreadable_image_with_a_non_utf8_name_is_named_in_one_line(tmp_path, capsys):
    root = class_tree(tmp_path / "data")
    Path(_raw(root, b"b/bad\xe9.png")).write_bytes(b"garbage")
    code = cli.main(["train", "--data", str(root), "--out", str(tmp_path / "run"), *TINY])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert "bad\\udce9.png" in lines[0]  # the byte that is not UTF-8, shown as its surrogate escape
    assert not (tmp_path / "run").exists()
    with warnings.catch_warnings(record=True) as w:  # --skip-corrupt says what it skipped
        warnings.simplefilter("always")
        assert len(load_source(str(root), skip_corrupt=True).train) == 24
    assert any("skipped 1" in str(x.message) for x in w)


# -- stray files at the root of a class tree -------------------------------------------------------


@pytest.mark.parametrize("strays", [1, 30])
def test_stray_images_beside_class_folders_are_refused(strays, tmp_path):
    root = class_tree(tmp_path / "data")
    for i in range(strays):
        _img(root / f"loose{i}.png", 200 + i)
    with pytest.raises(DataError, match="class folders .*loose0.png"):
        load_source(str(root))


def test_non_image_files_beside_class_folders_are_ignored_as_documented(tmp_path):
    root = class_tree(tmp_path / "data")
    (root / "README.txt").write_text("about the data")
    (root / ".DS_Store").write_bytes(b"\0\1")
    d = load_source(str(root)).train
    assert len(d) == 24 and d.classes == ["a", "b"]


def test_a_folder_of_images_with_an_empty_sub_folder_is_still_unlabelled_images(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for i in range(10):
        _img(root / f"{i}.png", i)
    (root / "thumbs").mkdir()
    d = load_source(str(root)).train
    assert len(d) == 10 and d.y is None


# -- float images ----------------------------------------------------------------------------------


def test_float_images_in_0_1_are_scaled_not_black(tmp_path):
    root = tmp_path / "floats"
    root.mkdir()
    arrays = []
    for i in range(6):
        a = np.random.default_rng(i).random((8, 8)).astype("float32")
        Image.fromarray(a, mode="F").save(root / f"{i}.tif")
        arrays.append(a)
    d = load_source(str(root)).train
    assert d.x.shape == (6, 8, 8, 1) and d.x.max() > 200
    want = np.round(np.stack(arrays) * 255).astype("uint8")
    assert np.abs(d.x[..., 0].astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("values", ["large", "negative", "nan"])
def test_float_images_out_of_range_are_refused(values, tmp_path):
    root = tmp_path / "floats"
    root.mkdir()
    a = np.random.default_rng(0).random((8, 8)).astype("float32")
    a = {
        "large": a * 300,
        "negative": a - 0.5,
        "nan": np.where(a > 0.5, np.nan, a).astype("float32"),
    }[values]
    Image.fromarray(a, mode="F").save(root / "0.tif")
    with pytest.raises(DataError, match="0.tif"):
        load_source(str(root))


# -- labels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label,ok",
    [
        (-1, True),
        (-2, False),
        (2**20 - 1, True),
        (2**20, False),
        (10**10, False),
        (-(2**40), False),
    ],
)
def test_labels_are_class_indices_or_minus_one(label, ok, tmp_path):
    y = np.repeat(np.arange(3), 16)
    y[5] = label
    p = tmp_path / "d.npz"
    np.savez(p, x=(np.random.default_rng(0).random((48, 8, 8)) * 255).astype("uint8"), y=y)
    if ok:
        assert load_source(str(p)).train.y[5] == label
    else:
        with pytest.raises(DataError, match="out of range"):
            load_source(str(p))


# -- special files as --data -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev_null", "socket"])
def test_a_special_file_as_data_is_one_line(kind, tmp_path):
    import socket

    if kind == "fifo":
        p = tmp_path / "pipe"
        os.mkfifo(p)
    elif kind == "socket":
        p = tmp_path / "s.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    else:
        p = Path("/dev/null")
    with pytest.raises(DataError, match="not a regular file or a folder"):
        load_source(str(p))


# -- a loaded encoder checks its input -------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enc")
    p = tmp / "d.npz"
    np.savez(
        p,
        x=(np.random.default_rng(0).random((48, 8, 8)) * 255).astype("uint8"),
        y=np.repeat(np.arange(3), 16),
    )
    assert cli.main(["train", "--data", str(p), "--out", str(tmp / "run"), *TINY]) == 0
    return tmp / "run", p


BAD_INPUTS = {
    "channels_last": (lambda: torch.rand(2, 8, 8, 1), "channels last"),
    "uint8": (lambda: torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8), "divide uint8"),
    "0_255_floats": (lambda: torch.rand(2, 1, 8, 8) * 255, "divide 0-255"),
    "wrong_channels": (lambda: torch.rand(2, 3, 8, 8), "3 channels"),
    "no_batch_axis": (lambda: torch.rand(1, 8, 8), "shape (1, 8, 8)"),
    "numpy": (lambda: np.zeros((2, 1, 8, 8), "float32"), "ndarray"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_a_loaded_encoder_says_what_input_it_expects(case, encoder_run):
    import selfsup

    enc = selfsup.load_encoder(encoder_run[0])
    make, needle = BAD_INPUTS[case]
    with pytest.raises(
        ConfigError, match=r"expects \(N, C, H, W\) float images in \[0, 1\] with C = 1"
    ) as e:
        enc(make())
    assert needle in str(e.value)


def test_a_checked_encoder_is_still_a_plain_module(encoder_run):
    import selfsup

    enc = selfsup.load_encoder(encoder_run[0])
    assert isinstance(enc, torch.nn.Module)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(copy.deepcopy(enc)(x), enc(x))
    res = selfsup.evaluate(enc, data=str(encoder_run[1]), device="cpu", protocols=["knn"])
    assert 0 <= res["eval"]["knn_top1"] <= 1


def test_a_train_test_root_with_loose_images_is_refused_and_other_folders_are_named(tmp_path):
    root = tmp_path / "data"
    class_tree(root / "train")
    class_tree(root / "test", per_class=4)
    class_tree(root / "val", per_class=2)
    for _ in range(2):  # decoded, then from the cache: both say what was ignored
        with pytest.warns(Warning, match="ignored val"):
            s = load_source(str(root))
        assert len(s.train) == 24 and len(s.test) == 8
    _img(root / "loose.png", 7)
    with pytest.raises(DataError, match="loose.png"):
        load_source(str(root))
