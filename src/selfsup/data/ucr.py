"""``--data ucr:NAME``: a UCR/UEA data set that ships inside sktime, with the archive's own split.

sktime is an optional extra (``pip install "selfsup[timeseries]"``); only the ``.ts`` files it
installs are used (found without importing sktime) and read by :mod:`selfsup.data.ts`, so nothing is
downloaded at run time. ``ucr_names()`` lists the sets that ship (sktime 1.2: ArrowHead,
BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels, OSULeaf, PLAID, ... ; some are regression
sets, which load unlabelled). For any other set of the archive, download its ``.ts`` files and give
``--data FOLDER`` (a folder with ``NAME_TRAIN.ts`` and ``NAME_TEST.ts``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DataError
from .base import Splits

PREFIX = "ucr:"
INSTALL = 'pip install "selfsup[timeseries]"'


def data_root() -> Path:
    """sktime's installed ``datasets/data`` folder; a missing extra is a one-line
    :class:`DataError`."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"--data ucr:NAME needs the timeseries extra, which is not installed; run: {INSTALL}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def ucr_names() -> list[str]:
    """The archive sets whose ``NAME_TRAIN.ts`` and ``NAME_TEST.ts`` ship with the installed
    sktime."""
    root = data_root()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / f"{p.name}_TRAIN.ts").is_file() and (p / f"{p.name}_TEST.ts").is_file()
    )


def load_ucr(spec: str) -> Splits:
    """``ucr:NAME`` (case-insensitive) as its archive train/test split."""
    from .ts import load_ts

    name = spec[len(PREFIX) :].strip()
    names = ucr_names()
    match = {n.lower(): n for n in names}.get(name.lower())
    if match is None:
        raise DataError(
            f"unknown UCR/UEA set '{name}'; the sets that ship with sktime are: "
            f"{', '.join(names) or 'none'} (for another set, download its .ts files and give "
            "--data FOLDER)"
        )
    return load_ts(data_root() / match, name=match)
