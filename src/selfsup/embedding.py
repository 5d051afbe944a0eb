"""Embeddings for files: a trained encoder's features of every sample of a data source.

``selfsup embed RUN_DIR --data SOURCE --out FILE`` (and :func:`embed`) loads any source that
``train`` accepts, checks that it is the kind of data the encoder takes, runs the encoder in
batches in eval mode on the deterministic model input (:meth:`Modality.prepare`) and writes one row
per sample, in input order:

- ``.npy``: a float32 array (N, D), nothing else;
- ``.csv`` / ``.parquet``: an ``id`` column (the file relative to its split folder, the row index
  in a table, the node id in a graph; ``train/3``-style positions where a source has no ids) and
  the features ``f0 .. f{D-1}`` (Parquet needs pyarrow: ``pip install "selfsup[tabular]"``).

"Input order": the source's training split, then its test split (a table's rows and a graph's
nodes in their file order, each once). The same loading serves ``selfsup predict``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import data as sources
from .errors import ConfigError, DataError, RunDirError
from .modalities import get as get_modality
from .modalities import modality_of
from .modalities.base import modality_for

OUT_SUFFIXES = (".npy", ".csv", ".parquet")


@dataclass
class Inputs:
    """The samples of a source as the parts they were loaded in, and how to put them in order.

    ``parts``: the source's splits (training, then test); ``ids``: one id per row of the parts
    concatenated; ``order``: the rows of that concatenation to keep, in input order."""

    parts: list[sources.Samples]
    ids: list[Any]
    order: np.ndarray
    classes: list[str] | None

    def __len__(self) -> int:
        return len(self.order)

    def ordered_ids(self) -> list[Any]:
        return [self.ids[i] for i in self.order]


@dataclass
class Embeddings:
    """What :func:`embed` returns: ``ids`` and ``features`` (N, D) in input order, and the file
    written (None without ``out``)."""

    ids: list[Any]
    features: np.ndarray
    path: Path | None = None


def load_inputs(
    source: str,
    meta: dict,
    label_column: str | None = None,
    skip_corrupt: bool = False,
    what: str = "--data",
    pair_channels: str | None = None,
) -> Inputs:
    """Every sample of ``source`` for an encoder described by ``meta``, refused in one line when it
    is another kind of data (modality, channels, columns). ``pair_channels``: split a series
    source's channels into two modalities (as ``train --pair-channels``) when it is not already the
    encoder's kind."""
    splits = load_splits(source, meta, label_column, skip_corrupt, what, pair_channels)
    parts = [d for d in (splits.train, splits.test) if d is not None]
    check_kind(parts[0], meta, what)
    ids: list[Any] = []
    named = [d.info.get("ids") for d in parts]
    use_named = all(n is not None and len(n) == len(d) for n, d in zip(named, parts))
    for k, d in enumerate(parts):
        split = "train" if k == 0 else "test"
        if use_named:
            own = list(named[k])  # type: ignore[arg-type]
            prefix = len(parts) > 1 and any(isinstance(v, str) for v in own)
            ids += [f"{split}/{v}" if prefix else v for v in own]
        else:
            ids += [f"{split}/{i}" for i in range(len(d))]
    order = np.arange(len(ids))
    if use_named and all(isinstance(v, (int, np.integer)) for v in ids):
        # rows of a table, nodes of a graph: file order, each once (a graph's test nodes are
        # also training nodes)
        seen: dict[int, int] = {}
        for i, v in enumerate(ids):
            seen.setdefault(int(v), i)
        order = np.array([seen[k] for k in sorted(seen)], dtype=np.int64)
    return Inputs(parts, ids, order, splits.train.classes)


def load_splits(
    source: str,
    meta: dict,
    label_column: str | None = None,
    skip_corrupt: bool = False,
    what: str = "--data",
    pair_channels: str | None = None,
) -> sources.Splits:
    """``source``'s splits for an encoder of ``meta`` (see :func:`load_inputs`), not yet checked."""
    from .data.paired import split_channels

    if not isinstance(source, str) or not source:
        raise ConfigError(f"{what} must name a data source (a path or a built-in name)")
    # the source options it was trained with (``--text-column``, ...) apply to any source
    options = meta.get("data_options") or {}
    splits = sources.load_source(
        source, None, skip_corrupt, None, label_column=label_column, options=options
    )
    if pair_channels and type(splits.train).modality != modality_for(meta).name:
        splits = split_channels(splits, pair_channels)
    return splits


def source_options(
    info: dict, data: str, label_column: str | None, pair_channels: str | None
) -> tuple[str | None, str | None]:
    """``(label_column, pair_channels)``: those given, else what the model was trained with (a
    run's ``config.yaml``, a classifier's fine-tuning settings): its ``--pair-channels``, and its
    ``--label-column`` when ``data`` is the source it was trained on."""
    from pathlib import Path

    from . import config as conf

    trained: dict = {}
    if info.get("run_dir") is not None and (info["run_dir"] / "config.yaml").is_file():
        trained = dict(conf.load_yaml(info["run_dir"] / "config.yaml").get("data") or {})
        trained["source"] = trained.get("source")
    elif isinstance(info.get("config"), dict) and isinstance(info["config"].get("finetune"), dict):
        trained = {
            "source": info["config"]["finetune"].get("data"),
            "label_column": info["config"]["finetune"].get("label_column"),
            "pair_channels": info["config"]["finetune"].get("pair_channels"),
        }

    def same(a, b) -> bool:
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()

    if label_column is None and same(data, trained.get("source")):
        label_column = trained.get("label_column")
    if pair_channels is None:
        pair_channels = trained.get("pair_channels")
    return label_column, pair_channels


def check_kind(d: sources.Samples, meta: dict, what: str = "--data") -> None:
    """One line when ``d`` is not what an encoder of ``meta`` takes."""
    want = modality_for(meta).name
    if type(d).modality != want:
        raise DataError(
            f"'{d.name}' is {type(d).modality} data but the encoder takes {want} data; give "
            f"{what} of the same kind as the encoder was trained on"
        )
    try:
        get_modality(want).check_eval_data(d, meta)
    except DataError as err:
        raise DataError(str(err).replace("--eval-data", what)) from None


@torch.no_grad()
def run_model(
    model: nn.Module,
    inputs: Inputs,
    meta: dict,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = False,
    label: str = "embedding",
) -> torch.Tensor:
    """``model``'s outputs (N, D) for every sample of ``inputs``, in input order, batched, in eval
    mode, on the deterministic model input; a progress bar on stderr with ``progress``."""
    was = model.training
    model.eval()
    outs = []
    total = sum(len(d) for d in inputs.parts)
    with _bar(progress, total, label) as advance:
        for d in inputs.parts:
            mod = modality_of(d)
            x = mod.to_tensor(d)
            for i in range(0, len(x), batch_size):
                xb = mod.prepare(x[i : i + batch_size].to(device), meta)
                outs.append(model(xb).float().cpu())
                advance(min(batch_size, len(x) - i))
    model.train(was)
    out = torch.cat(outs)
    return out[torch.from_numpy(inputs.order)]


class _bar:
    """A rich progress bar on stderr (or nothing): ``with _bar(on, total, label) as advance``."""

    def __init__(self, on: bool, total: int, label: str):
        self.on, self.total, self.label = on, total, label
        self.progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.on:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        task = self.progress.add_task(self.label, total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()


def check_out_file(out: str | os.PathLike, overwrite: bool) -> Path:
    """``out`` as a Path, checked before anything is computed: a known suffix, Parquet's package,
    and no existing file unless ``overwrite``."""
    from . import validate as validation

    p = validation.path_arg(out, "--out")
    suffix = p.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise ConfigError(
            f"--out '{out}' must end in {', '.join(OUT_SUFFIXES)} (the format is taken from it)"
        )
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(
                'writing Parquet needs pyarrow: pip install "selfsup[tabular]" (or write .csv/.npy)'
            ) from None
    if p.is_dir():
        raise RunDirError(f"--out '{out}' is a folder; give a file name ending in {suffix}")
    if p.exists() and not overwrite:
        raise RunDirError(f"'{out}' already exists; pass --overwrite to replace it")
    return p


def write_table(path: Path, ids: list[Any], columns: dict[str, np.ndarray] | np.ndarray) -> Path:
    """Write rows to ``path`` atomically: ``.npy`` (the array only), ``.csv`` or ``.parquet`` (an
    ``id`` column, then ``columns``). ``columns``: a 2-D array (named ``f0 ..``) or named 1-D
    arrays in order."""
    from .io import atomic_path

    suffix = path.suffix.lower()
    if isinstance(columns, np.ndarray):
        arr = columns
        columns = {f"f{j}": arr[:, j] for j in range(arr.shape[1])}
    elif suffix == ".npy":
        arr = np.stack([np.asarray(v, dtype=np.float32) for v in columns.values()], 1)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, arr)
        elif suffix == ".csv":
            import csv

            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["id", *columns])
                cols = list(columns.values())
                for i, ident in enumerate(ids):
                    w.writerow([ident, *[_cell(c[i]) for c in cols]])
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({"id": list(ids), **{k: np.asarray(v) for k, v in columns.items()}})
            pq.write_table(table, str(tmp))
    return path


def _cell(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    return v.item() if isinstance(v, np.generic) else v


def embed(
    model: str | os.PathLike | nn.Module,
    data: str,
    out: str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    label_column: str | None = None,
    pair_channels: str | None = None,
    skip_corrupt: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Embeddings:
    """Features of every sample of ``data`` under an encoder, in input order.

    Parameters
    ----------
    model
        A run directory, an ``encoder.safetensors``, a model folder
        (:func:`selfsup.save_pretrained`) or an encoder module from :func:`selfsup.load_encoder`.
        A fine-tuned classifier folder is refused (use ``selfsup predict``).
    data
        Any source ``selfsup train`` accepts, of the kind the encoder was trained on.
        ``label_column`` and ``pair_channels`` default to the run's own when ``model`` is a run
        directory (the label column only for the run's own source).
    out
        Optional file: ``.npy``, ``.csv`` or ``.parquet`` (see :mod:`selfsup.embedding`); an
        existing file is replaced only with ``overwrite``.

    Returns
    -------
    Embeddings
        ``ids``, ``features`` (float32, N x D) and ``path``.

    Examples
    --------
    >>> e = selfsup.embed("runs/demo", "digits", out="digits.parquet")   # doctest: +SKIP
    >>> e.features.shape                                                  # doctest: +SKIP
    (1797, 128)
    """
    from . import validate as validation
    from .pretrained import load_model

    dev = validation.device(device)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    path = None if out is None else check_out_file(out, overwrite)
    if isinstance(model, nn.Module):
        enc, info = model, {}
        if not isinstance(getattr(enc, "meta", None), dict):
            raise ConfigError(
                "embed takes an encoder from selfsup.load_encoder (a module with .meta)"
            )
    else:
        enc, info = load_model(model, "cpu", want="encoder")
    meta = enc.meta
    label_column, pair_channels = source_options(info, data, label_column, pair_channels)
    inputs = load_inputs(data, meta, label_column, skip_corrupt, pair_channels=pair_channels)
    enc = enc.to(dev)
    feats = run_model(enc, inputs, meta, batch_size, dev, progress).numpy().astype(np.float32)
    ids = inputs.ordered_ids()
    if path is not None:
        write_table(path, ids, feats)
    return Embeddings(ids, feats, path)
