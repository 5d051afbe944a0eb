"""Data sources, decoded once (and cached as arrays where decoding is slow).

``load_source(spec)`` accepts a built-in name (``digits``) or a path:

- a folder of images (``ROOT/<class>/<image>``, or ``ROOT/<image>`` unlabelled; ``train/`` and
  ``test/`` sub-folders are the splits),
- CIFAR-10/100 in the python batch format (the ``cifar-10-batches-py`` folder or its parent),
- an ``.npz`` file with ``x`` (N, H, W[, C]) uint8 images or (N, C, T) float series, and
  optional ``y`` (N,); an ``.npz`` with ``x_a`` and ``x_b`` is a paired source (two modalities of
  the same samples, :mod:`selfsup.data.paired`),
- a ``.ts`` file of the UCR/UEA archive, or a folder with ``NAME_TRAIN.ts`` and ``NAME_TEST.ts``,
- ``ucr:NAME``, a UCR/UEA set that ships with sktime (the ``timeseries`` extra),
- a table: ``.csv``/``.tsv`` or ``.parquet`` (``label_column`` names the labels), an ``.npz`` with
  ``x`` (N, F), or the built-in ``breast_cancer`` and ``wine`` (:mod:`selfsup.data.table`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import cache
from .base import GraphData, ImageData, Samples, SeriesData, Splits, TableData, stratified_split
from .cifar import find_cifar, load_cifar
from .digits import load_digits
from .folder import load_folder
from .graph import PREFIX as GRAPH_PREFIX
from .graph import is_graph_npz, load_edge_list, load_graph_npz, load_karate, load_sbm
from .npz import load_npz
from .paired import PairedData, is_paired_npz, load_paired_npz
from .table import TABLE_SUFFIXES, load_breast_cancer, load_table, load_wine
from .ts import load_ts
from .ucr import PREFIX as UCR_PREFIX
from .ucr import load_ucr

BUILTIN = {
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
    "wine": load_wine,
    "karate": load_karate,
    "sbm": load_sbm,
}


@dataclass(frozen=True)
class Source:
    """A kind of data source a modality adds (:func:`register_source`).

    ``claims(spec, path)`` says whether ``spec`` (as given; ``path`` is it as a path) is this kind
    of source, looking only at names and headers; ``load(spec, options)`` decodes it into
    :class:`Splits` (``options``: the keyword arguments of :func:`load_source`). ``requires``:
    source options (:class:`DataOption` keys) without which the source is not asked at all (a
    text source claims a CSV only when ``text_column`` is given; without it the CSV is a table)."""

    name: str
    claims: Callable[[str, Path], bool]
    load: Callable[..., Splits]
    requires: tuple[str, ...] = ()


#: sources added by modalities, asked in order before the built-in kinds
SOURCES: list[Source] = []


@dataclass(frozen=True)
class DataOption:
    """A source-specific option a modality adds (:func:`register_option`): ``data.options.KEY``
    in a recipe or ``--set``, and ``--FLAG VALUE`` on ``selfsup train`` (``flag`` defaults to the
    key with dashes). Sources read it from the ``options`` mapping :func:`load_source` passes."""

    key: str
    help: str
    flag: str = ""
    metavar: str = "VALUE"

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.key.replace("_", "-")


#: source options added by modalities, by key
DATA_OPTIONS: dict[str, DataOption] = {}


def register_option(option: DataOption) -> DataOption:
    """Add a source option (``data.options.KEY``, ``--FLAG`` on ``selfsup train``)."""
    DATA_OPTIONS[option.key] = option
    return option


def check_options(options: dict | None) -> dict:
    """``options`` as a dict, after refusing (in one line) a key no modality registered."""
    options = dict(options or {})
    unknown = sorted(k for k in options if k not in DATA_OPTIONS)
    if unknown:
        known = ", ".join(sorted(DATA_OPTIONS)) or "none are registered"
        raise DataError(
            f"unknown data option '{unknown[0]}'; the registered source options are: {known} "
            "(a plug-in may add more: --plugin)"
        )
    return options


def register_source(source: Source) -> Source:
    """Add a kind of source; it is asked before the built-in kinds (images, series, tables, ...)."""
    SOURCES[:] = [s for s in SOURCES if s.name != source.name] + [source]
    return source


def register_builtin(name: str, loader: Callable[[], Splits]) -> None:
    """Add a built-in data set: ``--data NAME`` calls ``loader()`` (generated or shipped data)."""
    BUILTIN[name] = loader


__all__ = [
    "Source",
    "SOURCES",
    "register_source",
    "register_builtin",
    "DataOption",
    "DATA_OPTIONS",
    "register_option",
    "check_options",
    "ImageData",
    "SeriesData",
    "TableData",
    "GraphData",
    "PairedData",
    "Samples",
    "Splits",
    "load_source",
    "eval_splits",
    "BUILTIN",
    "stratified_split",
]


def load_source(
    spec: str,
    image_size: int | None = None,
    skip_corrupt: bool = False,
    cache_dir: str | None = None,
    label_column: str | None = None,
    options: dict | None = None,
) -> Splits:
    """Load a data source into memory (decoding at most once per source version).

    ``label_column``: for CSV/Parquet tables, the column holding the labels (by name).
    ``options``: source options registered by modalities (:func:`register_option`), passed to the
    sources they added; the built-in kinds take none."""
    options = check_options(options)
    path = Path(spec).expanduser()
    for source in SOURCES:
        if all(k in options for k in source.requires) and source.claims(spec, path):
            return source.load(
                spec,
                image_size=image_size,
                skip_corrupt=skip_corrupt,
                cache_dir=cache_dir,
                label_column=label_column,
                options=options,
            )
    if options:
        raise DataError(
            f"the data option '{next(iter(options))}' applies to a source a modality added, but "
            f"'{spec}' is none of them; drop it"
        )
    if label_column is not None and not (
        path.suffix.lower() in TABLE_SUFFIXES
        and spec not in BUILTIN
        or spec.startswith(GRAPH_PREFIX)
    ):
        raise DataError(
            f"--label-column '{label_column}' applies to CSV or Parquet tables, but the data "
            f"source '{spec}' is not one; drop --label-column"
        )
    if spec.startswith(GRAPH_PREFIX):  # graph:EDGES.csv,NODES.csv
        return load_edge_list(spec, label_column)
    if path.suffix.lower() in TABLE_SUFFIXES and spec not in BUILTIN:
        if not path.is_file():
            raise DataError(
                f"table '{spec}' does not exist; give the path of a CSV or Parquet file"
            )
        return load_table(path, label_column, skip_corrupt)
    if spec in BUILTIN:
        splits = BUILTIN[spec]()
        return _resize(splits, image_size) if image_size else splits
    if spec.lower().startswith(UCR_PREFIX):
        return load_ucr(spec)
    if not path.exists():
        raise DataError(
            f"data source '{spec}' does not exist; give a path to an image folder, a CIFAR "
            f"batch folder or an .npz file, or a built-in name ({', '.join(BUILTIN)})"
        )
    if not (path.is_file() or path.is_dir()):
        raise DataError(
            f"data source '{spec}' is not a regular file or a folder (a device, FIFO or socket); "
            "give an image folder, a CIFAR batch folder or a data file"
        )
    if (
        path.is_file()
        and path.suffix.lower() == ".ts"
        or path.is_dir()
        and any(path.glob("*_TRAIN.ts"))
    ):
        return load_ts(path)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(
                f"data file '{spec}' is not an .npz; give an .npz with x (and y), a .ts file, "
                "an image folder, or a CIFAR batch folder"
            )
        if is_graph_npz(path):  # x, edge_index (and y, masks): a graph (selfsup.data.graph)
            return load_graph_npz(path)
        splits = load_paired_npz(path) if is_paired_npz(path) else load_npz(path)
        return _resize(splits, image_size) if image_size else splits
    cifar = find_cifar(path)
    kind = "cifar" if cifar is not None else "folder"
    src = cifar if cifar is not None else path
    options = {"kind": kind, "image_size": image_size, "skip_corrupt": skip_corrupt, "v": 2}
    root = cache.cache_root(cache_dir)
    key = f"{kind}-{cache.fingerprint(src, options)}"
    hit = cache.load_cached(key, root)
    if hit is not None:
        _report_skipped(hit)
        return hit
    if kind == "cifar":
        splits = load_cifar(src)
        if image_size:
            splits = _resize(splits, image_size)
    else:
        if not any(path.iterdir()):
            raise DataError(
                f"folder '{spec}' is empty; put images in ROOT/<class>/<image> or ROOT/<image>"
            )
        splits = load_folder(path, image_size, skip_corrupt)
    cache.store(key, root, splits)
    _report_skipped(splits)
    return splits


def _report_skipped(splits: Splits) -> None:
    """``--skip-corrupt``: say how many unreadable images were left out (a DataWarning; the CLI
    prints it as one ``warning:`` line). The count is also in ``ImageData.info['skipped']``."""
    import warnings

    from ..errors import DataWarning
    from .base import report_skipped

    report_skipped(splits, "unreadable image(s)")
    for d in (splits.train, splits.test):
        if d is not None and d.info.get("ignored"):  # image folders beside train/ and test/
            warnings.warn(
                f"{d.name}: only train/ and test/ are read; ignored {', '.join(d.info['ignored'])}",
                DataWarning,
                stacklevel=3,
            )


def _resize(splits: Splits, size: int) -> Splits:
    import torch
    import torch.nn.functional as F

    def r(d: ImageData | None):
        if d is None or not isinstance(d, ImageData) or d.size == size and d.x.shape[2] == size:
            return d
        t = torch.from_numpy(d.x).permute(0, 3, 1, 2).float()
        t = F.interpolate(
            t, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        x = t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        return ImageData(x, d.y, d.classes, d.name, d.info)

    return Splits(r(splits.train), r(splits.test))


def eval_splits(
    splits: Splits, eval_source: Splits | None = None, seed: int = 0
) -> tuple[Samples, Samples]:
    """The labelled (bank/train, query/test) pair used by evaluation protocols.

    ``eval_source`` when given, else ``splits``; its test split when present, else a fixed
    stratified 20% of its labelled samples.
    """
    s = eval_source or splits
    tr, te = s.train, s.test
    if te is not None and tr.labelled and te.labelled:
        return _labelled(tr), _labelled(te)
    pool = _labelled(tr)
    if pool is None:
        raise DataError(
            f"'{tr.name}' has no labels, so it cannot be evaluated; pass labelled data "
            "with --eval-data (a class-folder tree, CIFAR, or an .npz with y)"
        )
    a, b = stratified_split(pool.y, 0.2, seed)
    if len(a) == 0 or len(b) == 0:
        raise DataError(
            f"'{tr.name}' has {len(pool)} labelled sample(s), too few to hold out a 20% evaluation "
            "split (no class has two samples); give more labelled samples, or --eval-data"
        )
    return pool.subset(a, pool.name + "[80%]"), pool.subset(b, pool.name + "[20%]")


def unlabelled_eval_splits(splits: Splits, seed: int = 0) -> tuple[Samples, Samples]:
    """The (bank, query) pair of unlabelled data whose modality is evaluated without labels
    (paired data: cross-modal retrieval): the training and test splits, or without a test split a
    fixed random 80/20 of the training samples."""
    tr, te = splits.train, splits.test
    if te is not None:
        return tr, te
    if len(tr) < 2:
        raise DataError(
            f"'{tr.name}' has {len(tr)} sample(s), too few to hold out a 20% evaluation split; "
            "give more samples, or --eval-data"
        )
    order = np.random.default_rng(seed).permutation(len(tr))
    cut = len(tr) - max(1, len(tr) // 5)
    return (
        tr.subset(np.sort(order[:cut]), tr.name + "[80%]"),
        tr.subset(np.sort(order[cut:]), tr.name + "[20%]"),
    )


def _labelled(d: Samples) -> Samples | None:
    if d.y is None:
        return None
    keep = np.flatnonzero(d.y >= 0)
    if len(keep) == 0:
        return None
    return d if len(keep) == len(d) else d.subset(keep)
