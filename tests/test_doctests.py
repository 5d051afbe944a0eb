"""The docstring examples of the package run (``--doctest-modules`` over src/selfsup)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "selfsup"


def test_docstring_examples_run():
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules",
         "--rootdir", str(SRC.parent), str(SRC)],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
