"""Run directories: created without clobbering, locked while in use.

Layout: ``config.yaml``, ``metrics.jsonl``, ``checkpoints/``, ``encoder.safetensors``,
``summary.json`` (and ``eval.json`` after ``selfsup eval``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import RunDirError

LOCK_NAME = ".lock"


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
        raise RunDirError(f"run directory '{run_dir}' is in use by another selfsup process; wait for it "
                          "to finish or choose another --out") from None
    return lk


def prepare_new(run_dir: Path, overwrite: bool) -> FileLock:
    """Create ``run_dir`` for a new run. An existing non-empty one is an error unless ``overwrite``."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out '{run_dir}' is a file; choose a directory path")
    if run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(f"run directory '{run_dir}' already exists; pass --resume {run_dir} to continue "
                              "it, --overwrite to replace it, or choose another --out")
        lk = lock(run_dir)
        for p in run_dir.iterdir():
            if p.name == LOCK_NAME:
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return lk
    run_dir.mkdir(parents=True, exist_ok=True)
    return lock(run_dir)


def require_run(run_dir: Path, what: str = "config.yaml") -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory '{run_dir}' does not exist; give the --out directory of a run")
    if not (run_dir / what).is_file():
        raise RunDirError(f"'{run_dir}' is not a selfsup run directory (no {what})")
    return run_dir
