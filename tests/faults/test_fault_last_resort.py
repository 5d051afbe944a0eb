"""Whatever escapes reaches the user as one ``error:`` line: exit 2 when the cause is the input or
the machine (an OSError from a path, a torch RuntimeError from a shape, memory), exit 1 with
"internal error, please report" otherwise; the traceback only under --debug. The Python API raises
the project's own error types with the CLI's messages, and takes ``pathlib.Path`` where it takes a
path."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup import api, cli
from selfsup.errors import ConfigError, DataError, RunDirError, SelfSupError


def _shape_error():
    torch.zeros(2, 3) @ torch.zeros(4, 5)


def _raise(exc):
    def f(*a, **k):
        if callable(exc) and not isinstance(exc, BaseException) and not isinstance(exc, type):
            exc()
        raise exc

    return f


ESCAPES = {  # what escapes -> (exit status, words of the line)
    "oserror_from_a_path": (
        PermissionError(errno.EACCES, "Permission denied", "/data/x.png"),
        2,
        ["PermissionError", "/data/x.png"],
    ),
    "file_not_found": (
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope"),
        2,
        ["/nope"],
    ),
    "torch_shape": (_shape_error, 2, ["RuntimeError", "mat1 and mat2"]),
    "memory": (MemoryError(), 2, ["MemoryError"]),
    "internal_keyerror": (KeyError("oops"), 1, ["internal error", "please report", "KeyError"]),
    "internal_typeerror": (
        TypeError("bad operand"),
        1,
        ["internal error", "please report", "TypeError"],
    ),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
@pytest.mark.parametrize("debug", [False, True])
def test_an_escaping_exception_is_one_line(case, debug, monkeypatch, capsys):
    exc, code, words = ESCAPES[case]
    monkeypatch.setattr(api, "train", _raise(exc))
    argv = (["--debug"] if debug else []) + ["train"]
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert first.startswith("error:"), err
    for w in words:
        assert w in first, (w, first)
    if debug:
        assert "Traceback (most recent call last)" in err
    else:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_non_utf8_name_in_an_escaping_oserror_prints(monkeypatch, capsys):
    import os

    name = os.fsdecode(b"/data/\xff.png")
    monkeypatch.setattr(
        api, "train", _raise(PermissionError(errno.EACCES, "Permission denied", name))
    )
    assert cli.main(["train"]) == 2
    assert "\\udcff.png" in capsys.readouterr().err


# -- the Python API --------------------------------------------------------------------------------


def _tiny(tmp_path: Path) -> Path:
    p = tmp_path / "d.npz"
    np.savez(
        p,
        x=(np.random.default_rng(0).random((48, 8, 8)) * 255).astype("uint8"),
        y=np.repeat(np.arange(3), 16),
    )
    return p


def test_train_takes_pathlib_paths(tmp_path):
    data = _tiny(tmp_path)
    run = selfsup.train(
        data=data,
        out=tmp_path / "run",
        epochs=1,
        batch_size=16,
        backbone="convnet_small",
        overrides=[
            "model.proj_hidden=32",
            "model.proj_dim=16",
            "train.progress=none",
            "eval.report=false",
            "eval.diagnostics=false",
            "eval.baselines=false",
        ],
    )
    assert run.summary["epochs"] == 1 and run.dir == tmp_path / "run"
    assert (
        selfsup.evaluate(tmp_path / "run", protocols=["knn"], device="cpu")["eval"]["knn_top1"] >= 0
    )


WRONG = {  # a call -> (error type, words)
    "data_int": (lambda t: selfsup.train(data=123, out=t / "r"), ConfigError, "data.source"),
    "epochs_text": (
        lambda t: selfsup.train(epochs="three", out=t / "r"),
        ConfigError,
        "train.epochs",
    ),
    "config_float": (
        lambda t: selfsup.train(3.5),
        ConfigError,
        "config must be a Config, a dict or",
    ),
    "unknown_option": (lambda t: selfsup.train(epoch=3), ConfigError, "unknown option 'epoch'"),
    "resume_int": (lambda t: selfsup.train(resume=7), ConfigError, "resume must be a path"),
    "evaluate_int": (lambda t: selfsup.evaluate(42), ConfigError, "run directory or an nn.Module"),
    "load_encoder_none": (lambda t: selfsup.load_encoder(None), ConfigError, "must be a path"),
    "resume_missing": (lambda t: selfsup.train(resume=t / "nope"), RunDirError, "does not exist"),
    "data_missing": (
        lambda t: selfsup.train(data=t / "nope.npz", out=t / "r"),
        DataError,
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_wrong_argument_raises_the_projects_error_saying_what_was_expected(case, tmp_path):
    call, kind, words = WRONG[case]
    with pytest.raises(kind, match=None) as e:
        call(tmp_path)
    assert isinstance(e.value, SelfSupError) and words in str(e.value)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "r").exists()


def test_the_api_and_the_cli_say_the_same(tmp_path, capsys):
    data = _tiny(tmp_path)
    with pytest.raises(ConfigError) as e:
        selfsup.train(data=str(data), out=str(tmp_path / "r"), lr=float("inf"))
    assert (
        cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--lr", "inf"]) == 2
    )
    assert capsys.readouterr().err.strip() == f"error: {e.value}"
