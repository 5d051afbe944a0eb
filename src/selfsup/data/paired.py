"""Paired modalities: two containers of the same samples (two sensors of one event).

:class:`PairedData` holds two sample containers ``a`` and ``b`` (each of its own modality: series,
images, ...) of the same N samples, with one shared label array ``y``. Its modality is ``paired``
(:mod:`selfsup.modalities.paired`): each member keeps its own views and encoder, and a paired
method (``clip``, ``isogclr_pair``, ``xhcl``) contrasts the two towers.

Two sources:

- ``--pair-channels 0,1,2:3,4,5`` (``data.pair_channels``) splits the channels of a multichannel
  series source into two modalities (BasicMotions: accelerometer x, y, z and gyroscope x, y, z);
  both groups non-empty, no channel in both, every channel in range;
- an ``.npz`` with ``x_a`` and ``x_b`` (each (N, C, T) float series or (N, H, W[, C]) uint8 images),
  optional ``y`` (N,), and an optional test split ``x_a_test``, ``x_b_test`` (and ``y_test``).
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError
from .base import ImageData, Samples, SeriesData, Splits, check_images, check_labels, series_lengths

#: the two members' names, in order (keys of the encoder's ``towers`` and prefixes of the metrics)
TOWERS = ("a", "b")


@dataclass(init=False, repr=False, eq=False)
class PairedData(Samples):
    """Two containers ``a`` and ``b`` of the same samples with one label array ``y``.

    ``x`` is the pair ``(a.x, b.x)`` (for messages and sizes only: the modality reads ``a`` and
    ``b``). Each member gets the shared labels, so it can be evaluated on its own.
    """

    a: Samples
    b: Samples
    modality: ClassVar[str] = "paired"

    def __init__(
        self,
        a: Samples,
        b: Samples,
        y: np.ndarray | None = None,
        classes: list[str] | None = None,
        name: str = "pair",
        info: dict | None = None,
    ):
        if len(a) != len(b):
            raise DataError(
                f"{name}: the two modalities have different numbers of samples ({len(a)} in "
                f"'{a.name}', {len(b)} in '{b.name}'); give the same samples in "
                "both, in the same order"
            )
        if y is None:
            y = a.y if a.y is not None else b.y
        if y is not None:
            y = check_labels(y, len(a), name)
        a.y, b.y = y, y
        self.a, self.b, self.y, self.classes, self.name = a, b, y, classes, name
        self.info = dict(info or {})
        self.x = (a.x, b.x)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.a)

    def __repr__(self) -> str:
        return (
            f"PairedData(name='{self.name}', n={len(self)}, a={self.a.modality}, "
            f"b={self.b.modality})"
        )

    @property
    def channels(self) -> int:
        return self.a.channels + self.b.channels

    def member(self, tower: str) -> Samples:
        return self.a if tower == "a" else self.b

    def subset(self, idx: np.ndarray, name: str | None = None) -> PairedData:
        y = None if self.y is None else self.y[idx]
        return PairedData(
            self.a.subset(idx), self.b.subset(idx), y, self.classes, name or self.name, self.info
        )


# -- --pair-channels -------------------------------------------------------------------------------
def parse_pair_channels(spec: str) -> tuple[list[int], list[int]]:
    """``"0,1,2:3,4,5"`` -> ``([0, 1, 2], [3, 4, 5])``; a malformed split is a one-line
    DataError."""
    hint = (
        "give two comma-separated channel lists separated by ':', e.g. --pair-channels 0,1,2:3,4,5"
    )
    parts = str(spec).split(":")
    if len(parts) != 2:
        raise DataError(
            f"--pair-channels '{spec}' must split the channels into exactly two modalities; {hint}"
        )
    groups: list[list[int]] = []
    for side, part in zip(TOWERS, parts, strict=True):
        items = [p.strip() for p in part.split(",") if p.strip()]
        if not items:
            raise DataError(f"--pair-channels '{spec}' leaves modality {side} empty; {hint}")
        try:
            idx = [int(p) for p in items]
        except ValueError:
            raise DataError(
                f"--pair-channels '{spec}': channels must be integers; {hint}"
            ) from None
        if len(set(idx)) != len(idx):
            raise DataError(
                f"--pair-channels '{spec}' repeats a channel in modality {side}; {hint}"
            )
        groups.append(idx)
    both = sorted(set(groups[0]) & set(groups[1]))
    if both:
        raise DataError(
            f"--pair-channels '{spec}' puts channel(s) {', '.join(map(str, both))} in both "
            "modalities; each channel belongs to one of them"
        )
    return groups[0], groups[1]


def split_channels(splits: Splits, spec: str) -> Splits:
    """The series splits with their channels split into a :class:`PairedData` per ``spec``."""
    ga, gb = parse_pair_channels(spec)
    return Splits(
        _split(splits.train, ga, gb, spec),
        _split(splits.test, ga, gb, spec) if splits.test is not None else None,
    )


def _split(d: Samples, ga: list[int], gb: list[int], spec: str) -> PairedData:
    if not isinstance(d, SeriesData):
        raise DataError(
            f"--pair-channels splits the channels of series data, but '{d.name}' is "
            f"{d.modality} data; give a multichannel series source (ucr:NAME, .ts, .npz x=(N,C,T))"
        )
    bad = [c for c in ga + gb if not 0 <= c < d.channels]
    if bad:
        raise DataError(
            f"--pair-channels '{spec}': channel(s) {', '.join(map(str, bad))} out of range; "
            f"'{d.name}' has {d.channels} channel(s), numbered 0 to {d.channels - 1}"
        )

    def member(g: list[int]) -> SeriesData:
        x = np.ascontiguousarray(d.x[:, g])
        return SeriesData(
            x, d.y, d.classes, f"{d.name}[{','.join(map(str, g))}]", lengths=series_lengths(x)
        )

    return PairedData(member(ga), member(gb), d.y, d.classes, d.name, d.info)


# -- .npz with x_a, x_b ----------------------------------------------------------------------------
def is_paired_npz(path: Path) -> bool:
    """Whether ``path`` is an .npz with ``x_a`` (a paired source); False when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return "x_a" in getattr(f, "files", [])
    except (
        ValueError,
        OSError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        NotImplementedError,
        AttributeError,
        TypeError,
    ):
        return False


def load_paired_npz(
    path: Path,
    member: Callable[[str, str, dict[str, np.ndarray]], Any] | None = None,
    assemble: Callable[[Any, Any, np.ndarray | None, str], PairedData] | None = None,
) -> Splits:
    """``x_a``, ``x_b`` (+ ``y``) and optionally ``x_a_test``, ``x_b_test`` (+ ``y_test``).

    Sources of members this module does not read itself (sound, text) pass ``member(tower, key,
    arrays)``, which returns the member for ``arrays[key]`` or None to leave it to
    :func:`register_member`'s readers and the built-in ones, and ``assemble(a, b, y, name)``,
    which makes the pair (text drops pairs with an empty text); the checks of lengths, labels and
    the test split are the same for every member kind."""
    from .npz import pad_splits

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (
        ValueError,
        OSError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        NotImplementedError,
    ) as err:
        raise DataError(
            f"'{path}' is not a readable .npz file ({type(err).__name__}); save arrays with "
            "numpy.savez"
        ) from None
    if "x_b" not in arrays:
        raise DataError(
            f"'{path}' has 'x_a' but no 'x_b'; a paired .npz needs both modalities (x_a, x_b)"
        )
    name = path.stem

    def read(tower: str, key: str) -> Any:
        own = member(tower, key, arrays) if member is not None else None
        return own if own is not None else _member(path, key, arrays[key])

    def split(suffix: str) -> PairedData:
        ka, kb, ky = f"x_a{suffix}", f"x_b{suffix}", f"y{suffix}"
        xa, xb = arrays[ka], arrays[kb]
        a, b = read("a", ka), read("b", kb)  # shapes first (a 0-d array has no len)
        if len(xa) != len(xb):
            raise DataError(
                f"'{path}': '{ka}' has {len(xa)} samples but '{kb}' has {len(xb)}; give the same "
                "samples in both modalities, in the same order"
            )
        y = arrays.get(ky)
        if y is not None:
            if y.ndim != 1 or len(y) != len(xa):
                raise DataError(
                    f"'{path}': '{ky}' has shape {tuple(y.shape)} but '{ka}' has {len(xa)} "
                    f"samples; give one integer label per sample ({ky}=(N,))"
                )
            if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                raise DataError(f"'{path}': '{ky}' contains NaN or Inf; labels must be integers")
        if assemble is not None:
            return assemble(a, b, y, f"{name}{suffix}")
        return PairedData(a, b, y, None, f"{name}{suffix}")

    train = split("")
    test = test_split(path, arrays, split, train)
    if test is None and "y_test" in arrays:
        raise DataError(f"'{path}' has 'y_test' but no 'x_a_test'/'x_b_test'")
    if test is not None:  # series members: one common length per modality across the splits
        for t in TOWERS:
            if isinstance(train.member(t), SeriesData):
                padded = pad_splits(Splits(train.member(t), test.member(t)))
                setattr(train, t, padded.train)
                setattr(test, t, padded.test)
        for d in (train, test):
            d.x = (d.a.x, d.b.x)  # type: ignore[assignment]
    return Splits(train, test)


def test_split(path: Path, arrays: dict, split, train: PairedData) -> PairedData | None:
    """The test split of a paired ``.npz`` (``split("_test")``) when it has ``x_a_test`` and
    ``x_b_test`` (both or neither), each member of the same modality and channels as in ``train``;
    None without one."""
    if "x_a_test" not in arrays and "x_b_test" not in arrays:
        return None
    if "x_a_test" not in arrays or "x_b_test" not in arrays:
        raise DataError(f"'{path}' has only one of 'x_a_test' and 'x_b_test'; give both or neither")
    test = split("_test")
    for t in TOWERS:
        tr, te = train.member(t), test.member(t)
        if tr.modality != te.modality or tr.channels != te.channels:
            raise DataError(
                f"'{path}': 'x_{t}_test' ({te.modality}, {te.channels} channel(s)) does not "
                f"match 'x_{t}' ({tr.modality}, {tr.channels} channel(s))"
            )
    return test


#: readers of a paired ``.npz`` member array that modalities add (:func:`register_member`),
#: tried before the built-in series and image readers, the latest first
MEMBER_READERS: list[tuple[str, Callable[[np.ndarray, str], Samples | None]]] = []


def register_member(what: str, read: Callable[[np.ndarray, str], Samples | None]) -> None:
    """Let a paired ``.npz`` hold a member of another kind: ``read(x, where)`` returns the
    container for the array ``x`` when it is of that kind (``where`` names it in errors), else
    None. ``what`` is how the refusal of an unknown array names the kind, e.g.
    ``"(N, T, H, W, C) uint8 clips"``."""
    MEMBER_READERS.insert(0, (what, read))


def _member(path: Path, key: str, x: np.ndarray) -> Samples:
    where = f"'{path}': array '{key}'"
    for _, read in MEMBER_READERS:
        found = read(x, where)
        if found is not None:
            return found
    if x.dtype.kind == "f" and x.ndim == 3:
        return SeriesData(x, None, None, where)
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        x = x[..., None] if x.ndim == 3 else x
        check_images(x, where)
        return ImageData(x, None, None, where)
    kinds = ", ".join(what for what, _ in MEMBER_READERS)
    raise DataError(
        f"{where} has shape {tuple(x.shape)} and dtype {x.dtype}; give (N, C, T) float series "
        f"or (N, H, W[, C]) uint8 images{f', or {kinds}' if kinds else ''}"
    )


__all__ = [
    "PairedData",
    "register_member",
    "TOWERS",
    "parse_pair_channels",
    "split_channels",
    "is_paired_npz",
    "load_paired_npz",
]
