"""A full disk: a failed write leaves the previous checkpoint loadable and stops the run with one
clear line; after space is freed, --resume finishes exactly as an uninterrupted run.

Two ways to fail the write: a real kernel failure (RLIMIT_FSIZE makes the write of the checkpoint
fail with EFBIG inside safetensors), and a write that fills the disk half way (OSError ENOSPC).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal

import faultkit as fk
import numpy as np
import pytest

from selfsup import cli, io
from selfsup.errors import StorageError
from selfsup.train import checkpoint as ckpt


def _argv(data, out):
    return ["train", "--data", str(data), "--out", str(out), "--epochs", "3", *fk.TINY]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """An uninterrupted in-process run on 48 images (3 steps an epoch, 3 epochs)."""
    work = tmp_path_factory.mktemp("diskfull")
    data = fk.make_npz(work / "small.npz", n=48)
    assert cli.main(_argv(data, work / "ref")) == 0
    return data, fk.sha(work / "ref" / "encoder.safetensors")


def _fail_second_save(monkeypatch, how):
    real_save, real_save_file = ckpt.save, ckpt.save_file
    calls = {"n": 0}

    def save(path, state):
        calls["n"] += 1
        if calls["n"] == 2 and how == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            real_save(path, state)
        finally:
            resource.setrlimit(
                resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            )

    def save_file(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        if calls["n"] == 2 and how == "enospc":  # the disk filled up half way through the file
            os.truncate(filename, os.path.getsize(filename) // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "save", save)
    monkeypatch.setattr(ckpt, "save_file", save_file)


@pytest.mark.parametrize("how", ["rlimit", "enospc"])
def test_full_disk_keeps_previous_checkpoint_and_resume_matches(
    small, tmp_path, monkeypatch, capsys, how
):
    data, ref = small
    run = tmp_path / "run"
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then fails the write instead
    try:
        with monkeypatch.context() as m:
            _fail_second_save(m, how)
            rc = cli.main(_argv(data, run))
    finally:
        signal.signal(signal.SIGXFSZ, old)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: cannot write '") and "step-00000006.safetensors" in err[0]
    assert ("File too large" if how == "rlimit" else "No space left on device") in err[0]
    assert "--resume" in err[0]
    assert fk.temp_files(run) == []
    assert [c.name for c in fk.checkpoints(run)] == ["step-00000003.safetensors"]
    assert fk.assert_resumable(run) == 3
    assert cli.main(["train", "--resume", str(run)]) == 0  # space freed
    assert fk.sha(run / "encoder.safetensors") == ref


def test_full_disk_when_writing_summary_or_log(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    io.write_json(target, {"old": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match="No space left on device") as e:
        io.write_json(target, {"new": np.arange(3).tolist()})
    assert "\n" not in str(e.value) and str(target) in str(e.value)
    assert json.loads(target.read_text()) == {"old": 1}  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind

    def full_open(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("builtins.open", full_open)
    with pytest.raises(StorageError, match="metrics.jsonl.*No space left"):
        io.append_jsonl(tmp_path / "metrics.jsonl", {"step": 1})


def test_safetensors_io_error_text_is_recognised():
    err = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    e = io.storage_error(err, "x.safetensors")
    assert (
        isinstance(e, StorageError) and "No space left on device" in str(e) and "--resume" in str(e)
    )
    assert io.storage_error(RuntimeError("shape mismatch"), "x") is None
