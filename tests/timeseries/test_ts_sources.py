"""Series sources: the archive's .ts format, ucr:NAME, and their refusals (one line, exit 2, nothing
written)."""

import importlib.util

import numpy as np
import pytest

from selfsup.cli import main
from selfsup.data import load_source
from selfsup.data.ts import read_ts
from selfsup.errors import DataError

HAS_SKTIME = importlib.util.find_spec("sktime") is not None


def test_ts_folder_keeps_the_archive_split_unequal_lengths_and_missing_values(ts_folder):
    s = load_source(str(ts_folder))
    tr, te = s.train, s.test
    assert tr.x.shape == (24, 2, 24) and te.x.shape == (12, 2, 24) and tr.x.dtype == np.float32
    assert tr.classes == ["up", "down"] and tr.y[:2].tolist() == [0, 1]
    assert sorted(set(tr.lengths.tolist())) == [16, 20, 24]
    assert np.isnan(tr.x[0, :, 16:]).all() and not np.isnan(tr.x[0, :, :16]).any()
    assert (
        np.isnan(tr.x[3, 0, 5]) and tr.lengths[3] == 16
    )  # a missing value is not the end of a series


def test_a_single_ts_file_is_one_split(ts_folder):
    s = load_source(str(ts_folder / "Toy_TRAIN.ts"))
    assert s.test is None and len(s.train) == 24


@pytest.mark.parametrize(
    "body, needle",
    [
        ("@problemName x\n1,2,3\n", "expected a header line"),
        ("@problemName x\n", "no @data"),
        ("@classLabel true a b\n@data\n1,2,x:a\n", "not a number"),
        ("@classLabel true a b\n@data\n1,2,3:c\n", "not among the classes"),
        ("@classLabel true a b\n@data\n1,2:3,4:a\n1,2:a\n", "dimension"),
        ("@classLabel true a b\n@data\n?,?:a\n", "no observed value"),
        ("@timeStamps true\n@data\n(0,1):a\n", "timestamped"),
    ],
)
def test_bad_ts_files_are_refused_in_one_line(tmp_path, body, needle):
    p = tmp_path / "bad.ts"
    p.write_text(body)
    with pytest.raises(DataError) as e:
        read_ts(p, "bad")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_folder_without_its_test_file_is_refused(tmp_path, ts_folder):
    (ts_folder / "Toy_TEST.ts").unlink()
    with pytest.raises(DataError, match="no Toy_TEST.ts"):
        load_source(str(ts_folder))


def test_the_ts_reader_needs_no_sktime(monkeypatch, ts_folder):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert len(load_source(str(ts_folder)).train) == 24


@pytest.mark.skipif(not HAS_SKTIME, reason="the timeseries extra (sktime) is not installed")
def test_ucr_sets_ship_with_their_own_split():
    s = load_source("ucr:BasicMotions")
    assert s.train.x.shape == (40, 6, 100) and s.test.x.shape == (40, 6, 100)
    assert s.train.classes == ["Standing", "Running", "Walking", "Badminton"]
    j = load_source("ucr:japanesevowels")  # case-insensitive; unequal lengths, NaN-padded
    assert j.train.channels == 12 and j.train.lengths.min() < j.train.length


def run_cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.skipif(not HAS_SKTIME, reason="the timeseries extra (sktime) is not installed")
def test_an_unknown_ucr_name_lists_the_sets_that_ship(capsys, tmp_path):
    code, err = run_cli(capsys, "train", "--data", "ucr:NoSuchSet", "--out", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "NoSuchSet" in err[0] and "ArrowHead" in err[0] and "BasicMotions" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_missing_extra_names_the_install_command(capsys, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sktime" else real(name, *a)
    )
    code, err = run_cli(capsys, "train", "--data", "ucr:GunPoint", "--out", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and 'pip install "selfsup[timeseries]"' in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "arrays, needle",
    [
        (
            {"x": np.ones((6, 1, 8), np.float32), "x_test": np.ones((3, 2, 8), np.float32)},
            "same channels",
        ),
        (
            {
                "x": np.concatenate([np.full((1, 1, 8), np.nan), np.ones((5, 1, 8))]).astype(
                    np.float32
                )
            },
            "all-NaN",
        ),
        ({"x": np.full((6, 1, 8), np.inf, np.float32)}, "infinite"),
    ],
)
def test_bad_series_at_the_cli(capsys, tmp_path, arrays, needle):
    np.savez(tmp_path / "s.npz", y=np.zeros(6, np.int64), **arrays)
    code, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "s.npz"), "--out", str(tmp_path / "r")
    )
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "r").exists()


def test_a_series_shorter_than_the_crop_is_refused(capsys, tmp_path):
    x = np.random.default_rng(0).standard_normal((8, 1, 6)).astype(np.float32)
    np.savez(tmp_path / "s.npz", x=x, y=np.arange(8) % 2)
    code, err = run_cli(
        capsys,
        "train",
        "--method",
        "ts2vec",
        "--data",
        str(tmp_path / "s.npz"),
        "--set",
        "params.temporal_unit=3",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 2 and len(err) == 1 and "crops at least 16" in err[0], err
    assert not (tmp_path / "r").exists()


def test_an_unknown_series_view_preset_is_refused(capsys, tmp_path, ts_folder):
    code, err = run_cli(
        capsys,
        "train",
        "--data",
        str(ts_folder),
        "--set",
        "views.preset=cifarish",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 2 and len(err) == 1 and "unknown series view preset 'cifarish'" in err[0]
    assert not (tmp_path / "r").exists()
