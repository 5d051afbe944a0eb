"""The reference: one uninterrupted tiny run, shared by every fault test of the session.

While it runs, it is held inside a checkpoint save and the test process (a second process) tries to
use the same run directory three ways; what happened is recorded for test_fault_concurrent.py.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import faultkit as fk  # noqa: E402


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    from selfsup import cli

    work = tmp_path_factory.mktemp("reference")
    data = fk.make_npz(work / "tiny.npz")
    run = work / "run"
    ready, release = work / "ready", work / "release"
    p = fk.Proc(
        fk.train_args(data, run),
        work,
        "reference",
        FAULT_AT=2,
        FAULT_PHASE="after_rename",
        FAULT_READY=ready,
        FAULT_RELEASE=release,
    )
    fk.wait_for(ready.exists, p)
    before = {c.name: fk.sha(c) for c in fk.checkpoints(run)}
    attempts = {}
    for name, argv in {
        "new": fk.train_args(data, run),
        "overwrite": fk.train_args(data, run) + ["--overwrite"],
        "resume": fk.resume_args(run),
    }.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = cli.main(argv)
        attempts[name] = (rc, err.getvalue())
    during = {c.name: fk.sha(c) for c in fk.checkpoints(run)}
    release.touch()
    rc = p.wait()
    assert rc == 0, p.stderr()
    return {
        "data": data,
        "run": run,
        "encoder": fk.sha(run / "encoder.safetensors"),
        "attempts": attempts,
        "before": before,
        "during": during,
    }
