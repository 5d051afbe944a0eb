"""Atomic file writing: a file is written to a temporary name, flushed and renamed.

A reader (or a run killed at any moment) sees either the old file or the new one, never a torn one.
A write that fails at the OS level (disk full, quota, permissions) removes its temporary file and
raises :class:`~selfsup.errors.StorageError` with one line naming the file; the old file is intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import StorageError

TMP_SUFFIX = ".tmp"

#: errors that mean "the disk (or quota, or file-size limit) is full": say so, and how to go on
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _errno(err: BaseException) -> int | None:
    """The OS error number behind ``err``: an OSError's, or one quoted in the message of a wrapped
    I/O error (safetensors reports ``... (os error 28)``)."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno
    m = re.search(r"os error (\d+)", str(err))
    return int(m.group(1)) if m else None


def storage_error(err: BaseException, path: Path | str) -> StorageError | None:
    """A one-line :class:`StorageError` for a failed write of ``path``, or None if ``err`` is not
    an OS-level write failure."""
    if isinstance(err, StorageError):
        return err
    code = _errno(err)
    if code is None:
        return StorageError(f"cannot write '{path}': {err}") if isinstance(err, OSError) else None
    what = os.strerror(code)
    if code in _FULL:
        return StorageError(
            f"cannot write '{path}': {what} (disk full?); nothing already "
            "written was lost: free some space, then continue with --resume"
        )
    return StorageError(
        f"cannot write '{path}': {what}; check the permissions and free space of "
        f"'{Path(path).parent}'"
    )


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask is not
    thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise storage_error(err, path) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(err, Exception) and not isinstance(err, StorageError):
            full = storage_error(err, path)
            if full is not None:
                raise full from err
        raise


def remove_stale_temp(directory: str | os.PathLike) -> int:
    """Delete temporary files left in ``directory`` by a writer that was killed (ours end in
    ``.tmp``; safetensors' own start with ``.tmp``). Call it only while holding the run's lock."""
    n = 0
    d = Path(directory)
    if not d.is_dir():
        return 0
    for p in d.iterdir():
        ours = p.name.startswith(".") and p.name.endswith(TMP_SUFFIX)
        if p.is_file() and (ours or p.name.startswith(".tmp")):
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and flush it (metrics logs are append-only)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
    except OSError as err:
        raise storage_error(err, path) from err
