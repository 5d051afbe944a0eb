"""--overwrite replaces only selfsup's own runs: never a plain folder, the data, a parent of the
data, the current directory or the home directory. Each case lists the files before and after."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from selfsup import cli
from selfsup.rundir import MARKER

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


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(24):
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(root / c / f"{i}.png")
    return root


def train(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["train", *argv, *TINY])
    return code, capsys.readouterr().err


def one_line(code: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n in err, (n, err)


def test_overwrite_refuses_a_folder_that_is_not_a_run(capsys, tmp_path, tiny_npz):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "config.yaml").write_text("mine: true\n")  # even with a file named like ours
    before = tree(tmp_path)
    code, err = train(capsys, "--data", str(tiny_npz), "--out", str(out), "--overwrite")
    one_line(code, err, "not a selfsup run")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["data", "inside", "parent"])
def test_overwrite_never_touches_the_data(capsys, tmp_path, where):
    data = image_folder(tmp_path / "proj" / "imgs")
    out = {"data": data, "inside": data / "a", "parent": tmp_path / "proj"}[where]
    before = tree(tmp_path)
    code, err = train(capsys, "--data", str(data), "--out", str(out), "--overwrite")
    one_line(code, err, "data source")
    assert tree(tmp_path) == before


def test_a_run_inside_the_data_is_refused_even_when_new(capsys, tmp_path):
    data = image_folder(tmp_path / "imgs")
    before = tree(tmp_path)
    code, err = train(capsys, "--data", str(data), "--out", str(data / "runs" / "r1"))
    one_line(code, err, "data source")
    assert tree(tmp_path) == before


def test_overwrite_refuses_the_current_and_home_directory(capsys, tmp_path, tiny_npz, monkeypatch):
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "keep.txt").write_text("x")
    monkeypatch.chdir(cwd)
    before = tree(tmp_path)
    for out in (".", str(tmp_path), os.path.expanduser("~"), "/"):
        code, err = train(capsys, "--data", str(tiny_npz), "--out", out, "--overwrite")
        one_line(code, err)
    assert tree(tmp_path) == before


def test_overwrite_replaces_a_run_and_only_a_run(capsys, tmp_path, tiny_npz):
    out = tmp_path / "run"
    code, err = train(capsys, "--data", str(tiny_npz), "--out", str(out))
    assert code == 0, err
    assert (out / MARKER).is_file()
    (out / "metrics.jsonl").write_text("old\n")
    code, err = train(capsys, "--data", str(tiny_npz), "--out", str(out), "--overwrite")
    assert code == 0, err
    assert (out / "metrics.jsonl").read_text() != "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.replaced")] == []
    # without --overwrite an existing run is refused, and --overwrite is suggested
    code, err = train(capsys, "--data", str(tiny_npz), "--out", str(out))
    one_line(code, err, "already exists", "--overwrite")


def test_a_run_of_an_earlier_version_can_be_replaced(capsys, tmp_path, tiny_npz):
    out = tmp_path / "old"
    out.mkdir()
    (out / "config.yaml").write_text("method: simclr\n")
    (out / "summary.json").write_text("{}")
    code, err = train(capsys, "--data", str(tiny_npz), "--out", str(out), "--overwrite")
    assert code == 0, err
    assert (out / MARKER).is_file()


def test_a_failed_replacement_keeps_the_old_run(tmp_path, monkeypatch):
    from selfsup import rundir

    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text("")
    (out / "summary.json").write_text("old")

    def broken_mark(d):
        raise OSError("disk full")

    monkeypatch.setattr(rundir, "_mark", broken_mark)
    with pytest.raises(OSError):
        rundir.prepare_new(out, overwrite=True)
    assert (out / "summary.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
