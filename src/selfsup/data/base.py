"""The in-memory sample containers every source decodes to, once: one per modality.

A container holds one split: its samples ``x`` (a numpy array, first axis = samples), optional
integer labels ``y`` (``-1`` marks an unlabelled sample inside a partly labelled set), the class
names when known, a ``name`` for messages, and ``info`` (counts of skipped files, ...). Its class
names the modality (``modality``), which :mod:`selfsup.modalities` maps to the views, encoders,
raw-input baseline and evaluation inputs of that kind of data.

- :class:`ImageData`: uint8 (N, H, W, C), C in {1, 3}.
- :class:`SeriesData`: float32 (N, C, T); series shorter than T are padded with NaN after their
  ``lengths[i]`` valid steps (NaN inside a series means a missing value).
- :class:`TableData`: float32 (N, F); categorical columns hold codes into ``categories``.
- :class:`GraphData`: the nodes of one graph (features per node; the edges shared by every subset).

``info["ids"]``, where a source records it, is each sample's id in that source (an image's file
relative to its split folder, a table row's index among the file's data rows, a graph node's id);
:meth:`Samples.subset` keeps it aligned. ``selfsup embed`` and ``predict`` name their rows by it.

Fields listed in ``per_sample`` are sliced by :meth:`Samples.subset`; any other array field is
shared by every sample (room for graphs, whose samples are the nodes of one graph that every batch
shares).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import DataError


@dataclass
class Samples:
    """Base of the per-modality containers (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray | None = None
    classes: list[str] | None = None
    name: str = "data"
    info: dict = field(default_factory=dict)

    modality: ClassVar[str] = ""
    per_sample: ClassVar[tuple[str, ...]] = ("x", "y")

    def __post_init__(self):
        self.check()
        if self.y is not None:
            self.y = check_labels(self.y, len(self.x), self.name)

    def check(self) -> None:
        """Validate ``x`` for this modality (raise :class:`DataError` naming the split)."""

    def __len__(self) -> int:
        return len(self.x)

    @property
    def channels(self) -> int:
        raise NotImplementedError

    @property
    def labelled(self) -> bool:
        return self.y is not None and bool((self.y >= 0).any())

    def subset(self, idx: np.ndarray, name: str | None = None):
        """The samples ``idx`` as a new container of the same kind (shared fields kept as they
        are)."""
        changes = {
            f: getattr(self, f)[idx] for f in self.per_sample if getattr(self, f) is not None
        }
        info = dict(self.info)
        ids = info.pop("ids", None)  # the samples' ids in their source (file, row) follow them
        if ids is not None and len(ids) == len(self):
            info["ids"] = [ids[int(i)] for i in np.arange(len(self))[idx]]
        return dataclasses.replace(self, **changes, name=name or self.name, info=info)


@dataclass
class ImageData(Samples):
    """Decoded images as a uint8 array of shape (N, H, W, C), C in {1, 3}."""

    modality: ClassVar[str] = "image"

    def check(self) -> None:
        check_images(self.x, self.name)

    @property
    def channels(self) -> int:
        return int(self.x.shape[3])

    @property
    def size(self) -> int:
        return int(self.x.shape[1])


@dataclass
class SeriesData(Samples):
    """Series as float32 (N, C, T), NaN-padded after each sample's ``lengths[i]`` valid steps."""

    lengths: np.ndarray | None = None
    modality: ClassVar[str] = "timeseries"
    per_sample: ClassVar[tuple[str, ...]] = ("x", "y", "lengths")

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise DataError(
                f"{self.name}: series must be an array of shape (N, C, T) (samples, channels, "
                f"time steps), got {getattr(x, 'shape', type(x).__name__)}"
            )
        if len(x) == 0 or x.shape[1] == 0 or x.shape[2] == 0:
            raise DataError(
                f"{self.name}: the dataset is empty (shape {tuple(x.shape)}); give at least one "
                "series with one channel and one time step"
            )
        if x.dtype.kind not in "fiu":
            raise DataError(f"{self.name}: series must be numbers, got {x.dtype}")
        if np.isinf(x).any():
            raise DataError(
                f"{self.name}: series contain infinite values; replace them (NaN marks a "
                "missing value)"
            )
        with np.errstate(over="ignore"):  # a value beyond float32 is refused just below
            self.x = x = np.ascontiguousarray(x, dtype=np.float32)
        if np.isinf(x).any():  # finite in float64, beyond the float32 range
            raise DataError(
                f"{self.name}: series hold values beyond the 32-bit float range (about 3.4e38); "
                "rescale them"
            )
        if self.lengths is None:
            self.lengths = series_lengths(x)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        if (
            self.lengths.shape != (len(x),)
            or (self.lengths < 1).any()
            or (self.lengths > x.shape[2]).any()
        ):
            raise DataError(
                f"{self.name}: every series needs at least one observed time step (an all-NaN "
                "series was found); drop it"
            )

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def length(self) -> int:
        return int(self.x.shape[2])


@dataclass
class TableData(Samples):
    """Table rows as float32 (N, F): numeric columns in their own units, categorical columns as
    integer codes into ``categories[name]`` (the training split's vocabulary; -1: a category the
    training split never had). ``columns`` names the F columns in order."""

    columns: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)
    modality: ClassVar[str] = "table"

    def check(self) -> None:
        self.x = x = numeric_matrix(
            self.x,
            self.name,
            "a table must be",
            "rows, columns",
            "the table is empty (shape {shape}); give at least one row and one feature column",
            "table values must be",
            lambda r, c: f"row {r + 1}, column {c + 1}",
        )
        if not self.columns:
            self.columns = [f"f{i}" for i in range(x.shape[1])]
        if len(self.columns) != x.shape[1]:
            raise DataError(
                f"{self.name}: {len(self.columns)} column names for {x.shape[1]} columns"
            )

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])


@dataclass
class GraphData(Samples):
    """Nodes of one graph as samples: ``x`` float32 (n, F) features of these nodes, ``nodes`` their
    ids in the graph; shared by every subset: ``features`` (N, F) of all nodes, ``edge_index``
    int64 (2, E) (source row, target row; both directions stored for an undirected graph) and
    ``node_y`` (N,) the label of every node (-1 unknown; used by clustering) and ``val_nodes`` the
    labelled validation nodes (a source's ``val_mask``; probes that select an epoch on them). A
    subset of nodes keeps the whole graph, so message passing always runs on all of it
    (transductive)."""

    nodes: np.ndarray | None = None
    features: np.ndarray | None = None
    edge_index: np.ndarray | None = None
    node_y: np.ndarray | None = None
    val_nodes: np.ndarray | None = None
    modality: ClassVar[str] = "graph"
    per_sample: ClassVar[tuple[str, ...]] = ("x", "y", "nodes")

    def check(self) -> None:
        if self.features is None:
            self.features = self.x
        self.features, self.edge_index = check_graph(self.features, self.edge_index, self.name)
        n = len(self.features)
        if self.nodes is None:
            self.nodes = np.arange(n, dtype=np.int64)
        self.nodes = np.asarray(self.nodes, dtype=np.int64)
        if self.nodes.ndim != 1 or (
            len(self.nodes) and (self.nodes.min() < 0 or self.nodes.max() >= n)
        ):
            raise DataError(f"{self.name}: node ids must be 0 .. {n - 1}")
        self.x = self.features[self.nodes]
        if self.node_y is not None:
            self.node_y = check_labels(self.node_y, n, self.name)
        if self.val_nodes is not None:
            v = np.asarray(self.val_nodes, dtype=np.int64)
            if v.ndim != 1 or (len(v) and (v.min() < 0 or v.max() >= n)):
                raise DataError(f"{self.name}: validation node ids must be 0 .. {n - 1}")
            self.val_nodes = v

    @property
    def channels(self) -> int:
        return int(self.features.shape[1])  # type: ignore[union-attr]

    @property
    def n_nodes(self) -> int:
        return int(len(self.features))  # type: ignore[arg-type]


def report_skipped(splits: Splits, what: str) -> None:
    """``--skip-corrupt``: one warning per split that left ``what`` out (``"unreadable image(s)"``),
    from its ``info['skipped']`` count and first ``info['skipped_files']`` (the CLI prints a
    DataWarning as one ``warning:`` line)."""
    import warnings

    from ..errors import DataWarning

    for d in (splits.train, splits.test):
        n = 0 if d is None else int(d.info.get("skipped", 0))
        if d is not None and n:
            first = (d.info.get("skipped_files") or ["?"])[0]
            warnings.warn(
                f"{d.name}: skipped {n} {what} (--skip-corrupt), e.g. '{first}'",
                DataWarning,
                stacklevel=4,
            )


def series_lengths(x: np.ndarray) -> np.ndarray:
    """Valid length of each series: one past the last time step where any channel is observed."""
    observed = ~np.isnan(x).all(axis=1)  # (N, T)
    last = x.shape[2] - np.argmax(observed[:, ::-1], axis=1)
    return np.where(observed.any(axis=1), last, 0).astype(np.int64)


@dataclass
class Splits:
    train: Samples
    test: Samples | None = None


def check_images(x, name: str) -> None:
    if not isinstance(x, np.ndarray):
        raise DataError(f"{name}: images must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DataError(
            f"{name}: images must have shape (N, H, W) or (N, H, W, C) with C 1 or 3, "
            f"got {tuple(x.shape)}"
        )
    if x.dtype != np.uint8:
        raise DataError(
            f"{name}: images must be uint8 (0-255), got {x.dtype}; convert with "
            "(x * 255).round().astype('uint8') for floats in [0, 1]"
        )
    if len(x) == 0:
        raise DataError(f"{name}: the dataset is empty; point --data at a source with images")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(
            f"{name}: images of {x.shape[1]}x{x.shape[2]} pixels have nothing to learn from "
            f"(shape {tuple(x.shape)}); give images at least 1x1 pixel in size"
        )


def numeric_matrix(
    x, name: str, subject: str, axes: str, empty: str, values: str, at: Callable[[int, int], str]
) -> np.ndarray:
    """``x`` as a finite float32 (N, F) array with N, F >= 1, or a one-line :class:`DataError`
    worded for the kind of data: ``subject``/``values`` begin the shape and type messages, ``axes``
    names the two axes, ``empty`` is formatted with ``shape``, ``at(row, col)`` names a non-finite
    cell."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise DataError(
            f"{name}: {subject} an array of shape (N, F) ({axes}), got "
            f"{getattr(x, 'shape', type(x).__name__)}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{name}: " + empty.format(shape=tuple(x.shape)))
    if x.dtype.kind not in "fiub":
        raise DataError(f"{name}: {values} numbers, got {x.dtype}")
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise DataError(f"{name}: {at(int(r), int(c))} is NaN or infinite; fill or drop it")
    big = np.abs(x) > np.finfo(np.float32).max  # finite in float64, infinite as float32
    if big.any():
        r, c = np.argwhere(big)[0]
        raise DataError(
            f"{name}: {at(int(r), int(c))} is {float(x[r, c]):g}, beyond the 32-bit float range "
            "(about 3.4e38); rescale the data"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def check_graph(x, edge_index, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features float32 (N, F), edge_index int64 (2, E))`` or a one-line :class:`DataError`."""
    x = numeric_matrix(
        x,
        name,
        "node features must be",
        "nodes, features",
        "the graph is empty (features of shape {shape}); give at least one node with one feature",
        "node features must be",
        lambda r, c: f"node {r}, feature {c}",
    )
    if edge_index is None:
        raise DataError(f"{name}: a graph needs edge_index (2, E)")
    e = np.asarray(edge_index)
    if e.ndim != 2 or e.shape[0] != 2:
        raise DataError(
            f"{name}: edge_index must have shape (2, E) (source row, target row), got "
            f"{tuple(e.shape)}"
        )
    if e.dtype.kind not in "iu":
        if e.dtype.kind == "f" and np.isfinite(e).all() and (e == np.round(e)).all():
            e = e.astype(np.int64)
        else:
            raise DataError(f"{name}: edge_index must be integers (node ids), got {e.dtype}")
    e = np.ascontiguousarray(e, dtype=np.int64)
    n = len(x)
    if e.size and (e.min() < 0 or e.max() >= n):
        j = int(np.flatnonzero((e < 0).any(0) | (e >= n).any(0))[0])
        raise DataError(
            f"{name}: edge {j} ({int(e[0, j])} -> {int(e[1, j])}) points past the {n} nodes; node "
            f"ids must be 0 .. {n - 1}"
        )
    return x, e


#: labels are class indices below this (-1: unlabelled); evaluation allocates one column per class
MAX_LABEL = 2**20


def check_labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{name}: labels must have shape (N,), got {tuple(y.shape)}")
    if len(y) != n:
        raise DataError(
            f"{name}: {len(y)} labels for {n} samples; give exactly one label per sample"
        )
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{name}: labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < -1 or y.max() >= MAX_LABEL):
        bad = y.min() if y.min() < -1 else y.max()
        raise DataError(
            f"{name}: label {int(bad)} is out of range; labels are class indices from 0 to "
            f"{MAX_LABEL - 1} (-1 marks an unlabelled sample)"
        )
    return y.astype(np.int64)


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-stratified split, reproducible under ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
