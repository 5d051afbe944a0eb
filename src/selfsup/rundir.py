"""Run directories: created without clobbering, locked while in use, replaced only when they are
runs.

Layout: ``.selfsup-run`` (the marker that makes a folder a run), ``config.yaml``, ``metrics.jsonl``,
``checkpoints/``, ``encoder.safetensors``, ``summary.json`` (and ``eval.json``, ``report.html``).

This module is the one place that decides what selfsup may delete: :func:`prepare_new` replaces an
existing folder only when it is a selfsup run (it carries the marker, or holds nothing but the files
a run writes) and is not a protected place (a filesystem root, the home directory, the current
directory or one of its parents, a data source, a folder inside a data source or holding one). The
old run is moved aside and removed only after the new run directory exists.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import RunDirError

LOCK_NAME = ".lock"
MARKER = ".selfsup-run"
#: what a run directory of an earlier version (before the marker) may hold: nothing else
RUN_FILES = {
    LOCK_NAME,
    MARKER,
    "config.yaml",
    "metrics.jsonl",
    "checkpoints",
    "encoder.safetensors",
    "summary.json",
    "eval.json",
    "report.html",
    "tensorboard",
    "mlruns",
}


def default_dir(method: str, data: str) -> Path:
    name = Path(data).name if data not in ("digits",) else data
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{method}-{name or 'data'}-{stamp}"


def lock(run_dir: Path) -> FileLock:
    """Take the run directory's lock, or fail at once if another process holds it."""
    lk = FileLock(str(run_dir / LOCK_NAME), timeout=0)
    try:
        lk.acquire()
    except Timeout:
        raise RunDirError(
            f"run directory '{run_dir}' is in use by another selfsup process; wait for it "
            "to finish or choose another --out"
        ) from None
    return lk


def is_run(path: Path) -> bool:
    """A selfsup run directory: it carries the marker, or (runs of earlier versions) it holds a
    ``config.yaml`` and nothing but the files a run writes."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    if (path / MARKER).is_file():
        return True
    names = {p.name for p in path.iterdir()}
    return "config.yaml" in names and names <= RUN_FILES


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(p))))


def _related(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_out(run_dir: Path, protected: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an ``--out`` that is, contains or lies inside a data source (or cache), or that is a
    filesystem root, the home directory, or the current directory or one of its parents.
    Called before anything is written."""
    out = _real(run_dir)
    for p in protected:
        if p is None or not os.path.exists(os.path.expanduser(os.fspath(p))):
            continue
        src = _real(p)
        if _related(out, src):
            where = "is" if out == src else ("is inside" if src in out.parents else "contains")
            raise RunDirError(
                f"--out '{run_dir}' {where} the data source '{p}'; write runs outside the "
                "data (choose another --out)"
            )
    home = _real("~")
    cwd = _real(os.getcwd())
    if out == Path(out.anchor) or out == home or out == cwd or out in cwd.parents:
        raise RunDirError(
            f"--out '{run_dir}' is a filesystem root, the home directory or the current "
            "directory (or one of its parents); give a folder of its own, e.g. runs/NAME"
        )
    for parent in out.parents:  # not under a file, and somewhere we may write
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(
                    f"--out '{run_dir}' is under '{parent}', which is a file; choose a "
                    "directory path"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunDirError(
                    f"--out '{run_dir}' cannot be created: '{parent}' is not writable; "
                    "choose another --out"
                )
            break


def prepare_new(
    run_dir: Path, overwrite: bool, protected: Iterable[str | os.PathLike] = ()
) -> FileLock:
    """Create ``run_dir`` for a new run and lock it.

    An existing non-empty folder is an error unless ``overwrite`` is given *and* the folder is a
    selfsup run (see :func:`is_run`) in no protected place (see :func:`check_out`): then the old
    run is moved aside, the new directory is created, and only then is the old one removed.
    """
    run_dir = Path(run_dir)
    if check_new(run_dir, overwrite, protected):
        return _replace(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lk = lock(run_dir)
    _mark(run_dir)
    return lk


def check_new(run_dir: Path, overwrite: bool, protected: Iterable[str | os.PathLike] = ()) -> bool:
    """Every check :func:`prepare_new` makes, writing nothing. True when an old run will be
    replaced."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise RunDirError(f"--out '{run_dir}' is a symbolic link; give a real directory path")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out '{run_dir}' is a file; choose a directory path")
    check_out(run_dir, protected)
    if run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        if not is_run(run_dir):
            raise RunDirError(
                f"--out '{run_dir}' exists and is not a selfsup run directory; selfsup only "
                "replaces its own runs, so choose another --out (or empty the folder yourself)"
            )
        if not overwrite:
            raise RunDirError(
                f"run directory '{run_dir}' already exists; pass --resume {run_dir} to continue "
                "it, --overwrite to replace it, or choose another --out"
            )
        return True
    return False


def _mark(run_dir: Path) -> None:
    (run_dir / MARKER).write_text(
        "selfsup run directory: `selfsup train --overwrite` may replace it\n"
    )


def _replace(run_dir: Path) -> FileLock:
    old_lock = lock(run_dir)  # nobody else is using the old run
    aside = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(run_dir, aside)
    except OSError as err:
        old_lock.release()
        raise RunDirError(
            f"cannot move the old run '{run_dir}' aside ({err.strerror}); nothing was changed"
        ) from None
    lk = None
    try:
        run_dir.mkdir(
            parents=True
        )  # fails if someone else created it meanwhile: then it is not ours
        made = True
        lk = lock(run_dir)
        _mark(run_dir)
    except BaseException:
        if lk is not None:
            lk.release()
        if locals().get("made"):
            shutil.rmtree(
                run_dir, ignore_errors=True
            )  # only what we just made: the lock and marker
        if not run_dir.exists():
            os.rename(aside, run_dir)  # put the old run back
        old_lock.release()
        raise
    old_lock.release()
    shutil.rmtree(aside, ignore_errors=True)
    return lk


def require_run(run_dir: Path, what: str = "config.yaml") -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(
            f"run directory '{run_dir}' does not exist; give the --out directory of a run"
        )
    if not (run_dir / what).is_file():
        raise RunDirError(f"'{run_dir}' is not a selfsup run directory (no {what})")
    return run_dir
