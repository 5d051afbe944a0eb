"""Paired sources: --pair-channels on a series source, an .npz with x_a/x_b, and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup.data import load_source
from selfsup.data.base import ImageData, SeriesData, Splits
from selfsup.data.paired import PairedData, parse_pair_channels, split_channels
from selfsup.errors import DataError


def test_parse_pair_channels():
    assert parse_pair_channels("0,1,2:3,4,5") == ([0, 1, 2], [3, 4, 5])
    assert parse_pair_channels(" 4 : 0,2 ") == ([4], [0, 2])


@pytest.mark.parametrize(
    "spec, words",
    [
        ("0,1,2", "exactly two"),
        ("0:1:2", "exactly two"),
        (":1,2", "modality a empty"),
        ("0,1:", "modality b empty"),
        ("0,1:1,2", "in both"),
        ("0,x:1", "integers"),
        ("0,0:1", "repeats"),
    ],
)
def test_bad_pair_channels_are_one_line_errors(spec, words):
    with pytest.raises(DataError, match=words) as e:
        parse_pair_channels(spec)
    assert "\n" not in str(e.value)


def test_split_channels_makes_two_members_with_shared_labels(series5):
    s = split_channels(load_source(series5), "0,1:2,3,4")
    tr = s.train
    assert isinstance(tr, PairedData) and tr.modality == "paired"
    assert (tr.a.channels, tr.b.channels, tr.channels, len(tr)) == (2, 3, 5, 48)
    assert tr.a.y is tr.y and tr.b.y is tr.y
    sub = tr.subset(np.array([0, 5, 7]))
    assert len(sub) == 3 and len(sub.a) == len(sub.b) == 3 and list(sub.y) == list(tr.y[[0, 5, 7]])
    assert np.array_equal(sub.b.x, tr.b.x[[0, 5, 7]])
    assert s.test is not None and len(s.test) == 24


def test_out_of_range_channels_are_refused(series5):
    with pytest.raises(DataError, match=r"channel\(s\) 7 out of range.*5 channel"):
        split_channels(load_source(series5), "0,1:2,7")


def test_pair_channels_need_series_data():
    d = ImageData(np.zeros((4, 6, 6, 3), np.uint8))
    with pytest.raises(DataError, match="series"):
        split_channels(Splits(d), "0:1,2")


def test_paired_npz_loads_both_modalities(pair_file):
    s = load_source(pair_file)
    assert isinstance(s.train, PairedData) and isinstance(s.test, PairedData)
    assert (s.train.a.channels, s.train.b.channels, len(s.train), len(s.test)) == (2, 3, 48, 24)
    assert s.train.labelled


def test_paired_npz_with_mismatched_n_is_refused(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, x_a=np.zeros((5, 2, 8), np.float32), x_b=np.zeros((4, 3, 8), np.float32))
    with pytest.raises(DataError, match="'x_a' has 5 samples but 'x_b' has 4"):
        load_source(str(p))


def test_paired_npz_needs_both(tmp_path):
    p = tmp_path / "half.npz"
    np.savez(p, x_a=np.zeros((5, 2, 8), np.float32))
    with pytest.raises(DataError, match="no 'x_b'"):
        load_source(str(p))


def test_paired_container_refuses_different_sizes():
    a = SeriesData(np.zeros((3, 1, 4), np.float32))
    b = SeriesData(np.zeros((2, 1, 4), np.float32))
    with pytest.raises(DataError, match="different numbers of samples"):
        PairedData(a, b)


@pytest.mark.parametrize("content", [b"", b"random bytes, not a zip", b"\x93NUMPY" + b"\0" * 50])
def test_damaged_files_are_not_taken_for_paired_npz(tmp_path, content):
    from selfsup.data.paired import is_paired_npz

    p = tmp_path / "d.npz"
    p.write_bytes(content)
    assert is_paired_npz(p) is False  # load_npz then reports the file in one line


def test_npy_renamed_to_npz_is_not_paired(tmp_path):
    from selfsup.data.paired import is_paired_npz

    p = tmp_path / "d.npz"
    with open(p, "wb") as f:
        np.save(f, np.zeros((3, 2, 4), np.float32))
    assert is_paired_npz(p) is False
