"""One exception family for everything a user can get wrong.

The CLI catches :class:`SelfSupError`, prints ``error: <message>`` on one line to stderr and exits
with status 2. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class SelfSupError(Exception):
    """Base class of every error selfsup raises on purpose."""

    def __init__(self, message: str):
        # one line, always: the CLI prints it as is
        super().__init__(printable(" ".join(str(message).split())))


def printable(text: str) -> str:
    """``text`` with the surrogate escapes of non-UTF-8 file names shown as ``\\udcXX`` (any stream
    can print it; XX is the byte that was not UTF-8)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ConfigError(SelfSupError, ValueError):
    """An invalid configuration value, an unknown name, or a bad command-line option."""


class DataError(SelfSupError, ValueError):
    """A missing, empty, corrupt or malformed dataset."""


class RunDirError(SelfSupError):
    """A run directory that exists, is locked, or lacks what is needed."""


class CheckpointError(SelfSupError):
    """A checkpoint that is missing, corrupt, incompatible or unsafe to load."""


class TrainingError(SelfSupError):
    """Training cannot go on (for example, too many non-finite losses in a row)."""


class StorageError(SelfSupError, OSError):
    """A file could not be written (disk full, quota, permissions). Earlier files are intact.

    It is also an :class:`OSError`, so code that tolerates failed writes (the decode cache) still
    does.
    """


class DataWarning(UserWarning):
    """Something in the data was handled rather than rejected (e.g. unreadable images skipped)."""


class CheckpointWarning(DataWarning):
    """A damaged checkpoint was passed over for an earlier good one (the CLI prints one line)."""
