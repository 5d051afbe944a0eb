"""Every bad input of the foundation gets one line on stderr, `error: ...`, and exit status 2."""

import numpy as np
import pytest

from selfsup.cli import main

TINY = [
    "--backbone",
    "convnet_small",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--set",
    "train.progress=none",
    "--set",
    "eval.baselines=false",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
]


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_missing_path(capsys, tmp_path):
    code, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "does not exist", "nope")
    assert not (tmp_path / "r").exists()


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "empty")


def test_unreadable_image_is_named_and_can_be_skipped(capsys, tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(root / c / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    code, err = run_cli(capsys, "train", "--data", str(root), "--out", str(tmp_path / "r1"), *TINY)
    assert_one_line_error(code, err, "broken.png", "--skip-corrupt")
    code = main(
        ["train", "--data", str(root), "--out", str(tmp_path / "r2"), "--skip-corrupt", *TINY]
    )
    assert code == 0


@pytest.mark.parametrize(
    "arrays,needle",
    [
        ({"x": np.zeros((10, 4, 4, 2), np.uint8)}, "shape"),
        ({"x": np.zeros((10, 4, 4, 1), np.float32)}, "uint8"),
        ({"x": np.zeros((10, 4, 4), np.uint8), "y": np.zeros(9, np.int64)}, "has 10 samples"),
        ({"y": np.zeros(9, np.int64)}, "no array named 'x'"),
    ],
)
def test_bad_arrays(capsys, tmp_path, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    code, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, needle)


def test_corrupt_npz(capsys, tmp_path):
    (tmp_path / "c.npz").write_bytes(b"garbage")
    code, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "c.npz"), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "c.npz")


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--method", "simclrr"], ["unknown method 'simclrr'", "simclr"]),
        (["--backbone", "resnet7"], ["unknown backbone 'resnet7'", "resnet18"]),
        (["--lr", "0"], ["optim.lr", "> 0"]),
        (["--lr", "-1"], ["optim.lr"]),
        (["--set", "params.temperature=0"], ["params.temperature"]),
        (["--set", "params.temprature=0.1"], ["params.temprature", "unknown field"]),
        (["--epochs", "0"], ["train.epochs"]),
        (["--batch-size", "100000"], ["batch size 100000", "1347"]),
        (["--set", "optim.name=adam"], ["optim.name"]),
        (["--set", "nosuchfield"], ["no '='"]),
        (["--config", "/nonexistent.yaml"], ["config file"]),
        (["--device", "tpu"], ["device"]),
    ],
)
def test_invalid_values(capsys, tmp_path, argv, needles):
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), *argv)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "r").exists()


def test_unknown_option(capsys):
    code, err = run_cli(capsys, "train", "--epoch", "3x")
    assert_one_line_error(code, err)


def test_existing_folder_is_left_untouched(capsys, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code, err = run_cli(capsys, "train", "--out", str(out), *TINY)
    assert_one_line_error(code, err, "not a selfsup run")
    assert "--overwrite" not in err  # never suggested for a folder that is not a run
    assert (out / "precious.txt").read_text() == "keep me"


def test_resume_of_a_missing_run(capsys, tmp_path):
    code, err = run_cli(capsys, "train", "--resume", str(tmp_path / "none"))
    assert_one_line_error(code, err, "does not exist")


def test_debug_shows_the_traceback(tmp_path):
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "train", "--method", "nope", "--out", str(tmp_path / "r")])
