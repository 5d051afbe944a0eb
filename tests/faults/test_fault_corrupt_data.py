"""Bad data, built here: truncated and random-byte image files, zero-byte files, unusual modes
(CMYK, 16-bit, palette, alpha), mixed sizes, non-image files, NaN in arrays, labels that do not
match the samples. Each is handled as documented (data/folder.py, data/npz.py) or rejected with
one line naming the file or the field; ``--skip-corrupt`` says how many images it skipped."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfsup import cli
from selfsup.data import load_source
from selfsup.errors import DataError, DataWarning


def _png(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="PNG")
    return b.getvalue()


def _jpeg(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="JPEG", quality=95)
    return b.getvalue()


def _rgb(seed: int, size=(8, 8)) -> Image.Image:
    a = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")
    return Image.fromarray(a, "RGB")


BAD = {  # unreadable: rejected, or skipped with --skip-corrupt
    "truncated.jpg": lambda: _jpeg(_rgb(1, (32, 32)))[:300],
    "truncated.png": lambda: _png(_rgb(2, (32, 32)))[:120],
    "random.jpg": lambda: np.random.default_rng(3).bytes(500),
    "empty.png": lambda: b"",
}


def _odd_modes() -> dict[str, bytes]:
    """Readable images in unusual modes, each with a known expected RGB result."""
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    i16 = Image.fromarray(np.full((8, 8), 65535, np.uint16))  # 16-bit white
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1: blue
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent: composited on white
    big = _rgb(4, (12, 10))  # another size: resized to the common 8x8
    return {
        "cmyk.jpg": _jpeg(cmyk),
        "gray16.png": _png(i16),
        "palette.png": _png(pal),
        "alpha.png": _png(rgba),
        "big.png": _png(big),
    }


def _folder(root: Path, bad: list[str] = (), good: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(good):
        (root / f"ok{i}.png").write_bytes(_png(_rgb(10 + i)))
    for name, data in _odd_modes().items():
        (root / name).write_bytes(data)
    for name in bad:
        (root / name).write_bytes(BAD[name]())
    (root / "README.txt").write_text("not an image")  # non-image files are ignored
    (root / ".DS_Store").write_bytes(b"\0\1\2")
    (root / "notes.json").write_text("{}")
    return root


def test_unusual_modes_and_sizes_are_converted_as_documented(tmp_path):
    d = load_source(str(_folder(tmp_path / "imgs"))).train
    assert d.x.dtype == np.uint8 and d.x.shape == (11, 8, 8, 3)  # 6 ok + 5 odd, non-images ignored
    names = sorted([f"ok{i}.png" for i in range(6)] + list(_odd_modes()))
    px = {n: d.x[i, 4, 4] for i, n in enumerate(names)}
    assert px["cmyk.jpg"][0] > 200 and px["cmyk.jpg"][1:].max() < 60  # CMYK red -> RGB red
    assert (px["gray16.png"] == 255).all()  # 16-bit white scaled to 255
    assert tuple(px["palette.png"]) == (0, 0, 255)  # palette -> its colour
    assert (px["alpha.png"] == 255).all()  # transparent -> white background


@pytest.mark.parametrize("bad", sorted(BAD))
def test_each_unreadable_file_is_named_in_one_line(tmp_path, bad):
    root = _folder(tmp_path / "imgs", [bad])
    with pytest.raises(DataError) as e:
        load_source(str(root))
    msg = str(e.value)
    assert "\n" not in msg and str(root / bad) in msg and "--skip-corrupt" in msg


def test_skip_corrupt_skips_counts_and_reports(tmp_path, capsys):
    root = _folder(tmp_path / "imgs", sorted(BAD))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d = load_source(str(root), skip_corrupt=True).train
    assert len(d) == 11 and d.info["skipped"] == 4
    msgs = [str(x.message) for x in w if issubclass(x.category, DataWarning)]
    assert len(msgs) == 1 and "skipped 4 unreadable image(s)" in msgs[0]
    # end to end: the CLI prints it as one warning line (also on a decode-cache hit)
    for i in range(2):
        out = tmp_path / f"run{i}"
        rc = cli.main(
            [
                "train",
                "--data",
                str(root),
                "--skip-corrupt",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--backbone",
                "convnet_small",
                "--batch-size",
                "4",
                "--set",
                "train.progress=none",
                "--set",
                "model.proj_hidden=8",
                "--set",
                "model.proj_dim=4",
                "--set",
                "eval.diagnostics=false",
                "--set",
                "eval.report=false",
            ]
        )
        err = capsys.readouterr().err
        assert rc == 0, err
        assert [ln for ln in err.splitlines() if ln.startswith("warning:")] == [
            "warning: imgs: skipped 4 unreadable image(s) (--skip-corrupt), e.g. "
            f"'{root / 'empty.png'}'"
        ]


def test_only_unreadable_files_is_an_error_even_when_skipping(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    for name, make in BAD.items():
        (root / name).write_bytes(make())
    with pytest.raises(DataError, match=r"no readable images .*\(4 unreadable skipped\)"):
        load_source(str(root), skip_corrupt=True)


def _npz(tmp_path, **arrays) -> str:
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return str(p)


X = np.zeros((10, 8, 8), np.uint8)


@pytest.mark.parametrize(
    "arrays, field",
    [
        ({"x": np.full((10, 8, 8, 1), np.nan)}, "'x' contains NaN"),
        ({"x": np.zeros((10, 8, 8, 1), np.float32)}, "must be uint8"),
        ({"x": np.full((10, 8, 8), np.nan)}, "all-NaN series"),  # float (N, C, T) is a series
        ({"x": np.full((10, 2, 8), np.inf)}, "infinite"),
        ({"x": X, "y": np.zeros(9, int)}, "'y' has shape (9,) but 'x' has 10 samples"),
        ({"x": X, "y": np.zeros((10, 2), int)}, "'y' has shape (10, 2)"),
        ({"x": X, "y": np.r_[np.zeros(9), np.nan]}, "'y' contains NaN"),
        ({"x": X, "y": np.array(["a"] * 10)}, "'y' has dtype <U1"),
        ({"x": X, "y": np.full(10, 0.5)}, "labels must be integers"),
        (
            {"x": X, "x_test": X[:4], "y_test": np.zeros(5, int)},
            "'y_test' has shape (5,) but 'x_test' has 4",
        ),
        ({"x": X, "y_test": np.zeros(5, int)}, "'y_test' but no 'x_test'"),
        ({"x": np.zeros((10, 8, 8, 2), np.uint8)}, "C 1 or 3"),
        ({"x": np.zeros((0, 8, 8), np.uint8)}, "empty"),
        ({"x": np.uint8(3)}, "array 'x'"),
        ({"images": X}, "no array named 'x'"),
    ],
)
def test_bad_arrays_are_rejected_naming_the_field(tmp_path, arrays, field):
    with pytest.raises(DataError) as e:
        load_source(_npz(tmp_path, **arrays))
    assert "\n" not in str(e.value) and field in str(e.value), str(e.value)


@pytest.mark.parametrize("content", [b"", b"random bytes, not a zip", b"\x93NUMPY" + b"\0" * 50])
def test_unreadable_npz_is_rejected(tmp_path, content):
    p = tmp_path / "d.npz"
    p.write_bytes(content)
    with pytest.raises(DataError, match="not a readable .npz"):
        load_source(str(p))


def test_npy_renamed_to_npz_is_rejected(tmp_path):
    p = tmp_path / "d.npz"
    with open(p, "wb") as f:
        np.save(f, X)
    with pytest.raises(DataError, match="single .npy array"):
        load_source(str(p))
