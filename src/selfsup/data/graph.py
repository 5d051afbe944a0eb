"""Graphs: one graph whose nodes are the samples (transductive node-level learning).

Sources:

- an ``.npz`` with ``x`` (N, F) node features, ``edge_index`` (2, E) integer (row 0 the source
  node, row 1 the target; an undirected graph stores both directions), optional ``y`` (N,) and
  optional boolean ``train_mask`` / ``val_mask`` / ``test_mask`` (N,): the format of
  ``../shared/data/cora.npz`` (Cora with the public Planetoid split). Loaded with
  ``allow_pickle=False``;
- ``graph:EDGES.csv,NODES.csv``: an edge list (a header, then one ``source,target`` row per edge,
  node ids as in NODES; each edge is stored in both directions unless it is already there) and a
  node table (a header; the first column the node id, then numeric feature columns; the label
  column named by ``--label-column`` is taken out of the features);
- a PyTorch Geometric ``Data`` object in the Python API (:func:`from_pyg`, :func:`save_graph_npz`);
- the built-in ``karate`` (Zachary's karate club, as networkx ships it; identity features, the two
  clubs as labels) and ``sbm`` (a seeded stochastic block model: 4 blocks of 100 nodes, edges with
  probability 0.1 inside a block and 0.01 across, 32 features: unit Gaussian noise around a block
  mean drawn with standard deviation 0.25, so the features alone are only partly informative (a
  linear probe on them: about 75%) and the graph carries the rest).

Splits: the training split holds every node (self-supervised training sees the whole graph); its
labels are those of the train mask only (-1 elsewhere), so evaluation's bank is the train-mask
nodes; the test split is the test-mask nodes. The labelled val-mask nodes, where a source has a
``val_mask``, are kept as ``val_nodes`` for the probes that choose an epoch on them
(``node_adam``); they must be neither train nor test nodes. Without masks, labelled nodes are
split once, stratified, into 80% bank and 20% test (seed 0), and there are no validation nodes.

Malformed graphs are refused in one line: an ``edge_index`` that is not (2, E) integers or points
past the node count or below 0, features that are not (N, F) finite numbers, masks of the wrong
length or type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import GraphData, Splits, check_graph, check_labels, stratified_split

MASKS = ("train_mask", "val_mask", "test_mask")
TEST_FRACTION = 0.2


def graph_splits(
    x: Any,
    edge_index: Any,
    y: Any = None,
    masks: dict[str, Any] | None = None,
    name: str = "graph",
    classes: list[str] | None = None,
) -> Splits:
    """Train (every node; labels of the train mask only) and test (the test-mask nodes) splits."""
    x, e = check_graph(x, edge_index, name)
    n = len(x)
    masks = {k: v for k, v in (masks or {}).items() if v is not None}
    for k, m in masks.items():
        m = np.asarray(m)
        if m.shape != (n,) or m.dtype.kind not in "bui":
            raise DataError(
                f"{name}: {k} must be a boolean array of shape ({n},), got {m.dtype} "
                f"{tuple(m.shape)}"
            )
        masks[k] = m.astype(bool)
    if y is None:
        if masks:
            raise DataError(
                f"{name}: masks were given without labels y; give y (N,) or drop the masks"
            )
        info = {"ids": list(range(n))}
        return Splits(
            GraphData(x, None, classes, f"{name}/train", info, features=x, edge_index=e), None
        )
    y = check_labels(y, n, name)
    if "train_mask" in masks and "test_mask" in masks:
        tr, te = (
            np.flatnonzero(masks["train_mask"] & (y >= 0)),
            np.flatnonzero(masks["test_mask"] & (y >= 0)),
        )
        if len(tr) == 0 or len(te) == 0:
            raise DataError(
                f"{name}: train_mask and test_mask must each select at least one labelled node"
            )
        both = np.intersect1d(tr, te)
        if len(both):  # test nodes in the probe's training set: the test score would leak
            raise DataError(
                f"{name}: train_mask and test_mask share {len(both)} labelled node(s) (e.g. node "
                f"{int(both[0])}); a node is in the training split or the test split, never both"
            )
    elif masks:
        raise DataError(
            f"{name}: give both train_mask and test_mask, or neither (a stratified split is made)"
        )
    else:
        lab = np.flatnonzero(y >= 0)
        if len(lab) < 2:
            raise DataError(f"{name}: fewer than two labelled nodes; nothing to evaluate on")
        a, b = stratified_split(y[lab], TEST_FRACTION, seed=0)
        tr, te = lab[a], lab[b]
        if len(tr) == 0 or len(te) == 0:
            raise DataError(
                f"{name}: {len(lab)} labelled node(s) are too few to hold out a test split (no "
                "class has two nodes); label more nodes, or give train_mask and test_mask"
            )
    val = None
    if "val_mask" in masks and "train_mask" in masks:
        val = np.flatnonzero(masks["val_mask"] & (y >= 0))
        for other, what in ((tr, "train_mask"), (te, "test_mask")):
            both = np.intersect1d(val, other)
            if len(both):  # an epoch chosen on test nodes, or on the probe's own training nodes
                raise DataError(
                    f"{name}: val_mask and {what} share {len(both)} labelled node(s) (e.g. node "
                    f"{int(both[0])}); a validation node is in neither the training nor the test "
                    "split"
                )
    y_train = np.full(n, -1, dtype=np.int64)
    y_train[tr] = y[tr]
    info: dict[str, Any] = {"masks": sorted(masks)} if masks else {}
    info["ids"] = list(range(n))  # node ids (the test split's follow its subset)
    shared = dict(features=x, edge_index=e, node_y=y, val_nodes=val)
    train = GraphData(x, y_train, classes, f"{name}/train", info, **shared)
    full = GraphData(x, y, classes, f"{name}/test", {"ids": list(range(n))}, **shared)
    return Splits(train, full.subset(te))


def is_graph_npz(path: Path) -> bool:
    try:  # anything unreadable is left to the plain .npz loader, which names what is wrong
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            return False
        with z:
            return "edge_index" in z.files
    except Exception:  # noqa: BLE001
        return False


def load_graph_npz(path: Path) -> Splits:
    """An ``.npz`` graph (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise DataError(f"'{path}' is not a readable .npz of numeric arrays ({err})") from None
    if "x" not in arrays:
        raise DataError(f"'{path}' has edge_index but no x; give node features x (N, F)")
    x = arrays["x"]
    if x.ndim == 1:
        raise DataError(f"'{path}': x must be (N, F) node features, got shape {tuple(x.shape)}")
    return graph_splits(
        x, arrays["edge_index"], arrays.get("y"), {k: arrays.get(k) for k in MASKS}, path.stem
    )


PREFIX = "graph:"


def load_edge_list(spec: str, label_column: str | None = None) -> Splits:
    """``graph:EDGES.csv,NODES.csv`` (see the module docstring)."""
    import csv

    parts = spec[len(PREFIX) :].split(",")
    if len(parts) != 2:
        raise DataError(f"'{spec}': give graph:EDGES.csv,NODES.csv (an edge list and a node table)")
    edges_p, nodes_p = (Path(p).expanduser() for p in parts)
    for p in (edges_p, nodes_p):
        if not p.is_file():
            raise DataError(f"'{p}' does not exist; give graph:EDGES.csv,NODES.csv")

    def rows(p: Path) -> tuple[list[str], list[list[str]]]:
        try:
            with open(p, newline="", encoding="utf-8") as f:
                r = [row for row in csv.reader(f) if row and any(c.strip() for c in row)]
        except (UnicodeDecodeError, csv.Error) as err:
            raise DataError(f"'{p}' is not a readable UTF-8 CSV ({err})") from None
        if len(r) < 2:
            raise DataError(f"'{p}' needs a header row and at least one data row")
        for i, row in enumerate(r[1:], start=1):
            if len(row) != len(r[0]):
                raise DataError(
                    f"'{p}': row {i} has {len(row)} fields but the header has {len(r[0])}"
                )
        return [h.strip() for h in r[0]], [[c.strip() for c in row] for row in r[1:]]

    head, body = rows(nodes_p)
    ids = {row[0]: i for i, row in enumerate(body)}
    if len(ids) != len(body):
        raise DataError(f"'{nodes_p}': node ids (first column '{head[0]}') must be unique")
    if label_column is not None and label_column not in head[1:]:
        raise DataError(
            f"label column '{label_column}' is not a column of '{nodes_p}' (columns: "
            f"{', '.join(head[1:20])}); give --label-column NAME with one of them"
        )
    feat_cols = [j for j, h in enumerate(head) if j > 0 and h != label_column]
    if not feat_cols:
        raise DataError(f"'{nodes_p}' has no feature columns besides the node id")
    x = np.empty((len(body), len(feat_cols)), dtype=np.float32)
    for i, row in enumerate(body):
        for k, j in enumerate(feat_cols):
            try:
                x[i, k] = float(row[j])
            except ValueError:
                raise DataError(
                    f"'{nodes_p}': row {i + 1}, column '{head[j]}': '{row[j]}' is not a number"
                ) from None
    y = classes = None
    if label_column is not None:
        j = head.index(label_column)
        # an empty label cell is an unlabelled node (-1), as in a table, never a class ''
        classes = sorted({row[j] for row in body if row[j]})
        code = {c: k for k, c in enumerate(classes)}
        y = np.array([code.get(row[j], -1) for row in body], dtype=np.int64)
    ehead, ebody = rows(edges_p)
    if len(ehead) < 2:
        raise DataError(f"'{edges_p}': an edge list needs two columns (source, target)")
    e = np.empty((2, len(ebody)), dtype=np.int64)
    for k, row in enumerate(ebody):
        for side in (0, 1):
            if row[side] not in ids:
                raise DataError(
                    f"'{edges_p}': row {k + 1}: node '{row[side]}' is not in '{nodes_p}'"
                )
            e[side, k] = ids[row[side]]
    pairs = set(map(tuple, e.T.tolist()))
    back = (
        np.array([[t, s] for s, t in pairs if (t, s) not in pairs], dtype=np.int64).reshape(-1, 2).T
    )
    e = np.concatenate([e, back], axis=1)
    return graph_splits(x, e, y, name=nodes_p.stem, classes=classes)


def load_karate() -> Splits:
    """Zachary's karate club (34 members, 78 friendships), as networkx ships it: one-hot identity
    features, the club each member joined (``Mr. Hi`` = 0, ``Officer`` = 1) as labels."""
    try:
        import networkx as nx
    except ImportError:
        raise DataError(
            "the built-in 'karate' graph needs networkx; pip install networkx"
        ) from None
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    und = np.array(sorted((min(u, v), max(u, v)) for u, v in g.edges()), dtype=np.int64).T
    e = np.concatenate([und, und[::-1]], axis=1)
    y = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(n)], dtype=np.int64)
    return graph_splits(
        np.eye(n, dtype=np.float32), e, y, name="karate", classes=["Mr. Hi", "Officer"]
    )


def sbm_graph(
    blocks: int = 4,
    size: int = 100,
    p_in: float = 0.1,
    p_out: float = 0.01,
    features: int = 32,
    signal: float = 0.25,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, edge_index, y)`` of a stochastic block model (undirected, no self-loops), seeded."""
    rng = np.random.default_rng(seed)
    n = blocks * size
    y = np.repeat(np.arange(blocks), size)
    p = np.where(y[:, None] == y[None, :], p_in, p_out)
    a = np.triu(rng.random((n, n)) < p, k=1)
    src, dst = np.nonzero(a)
    e = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]).astype(np.int64)
    means = rng.normal(0.0, signal, size=(blocks, features))
    x = (means[y] + rng.normal(0.0, 1.0, size=(n, features))).astype(np.float32)
    return x, e, y


def load_sbm() -> Splits:
    x, e, y = sbm_graph()
    return graph_splits(x, e, y, name="sbm", classes=[f"block{i}" for i in range(int(y.max()) + 1)])


def from_pyg(data: Any, name: str = "pyg") -> Splits:
    """Splits of a PyTorch Geometric ``Data`` object (``x``, ``edge_index``, optional ``y`` and
    masks)."""

    def arr(v: Any) -> np.ndarray | None:
        return (
            None
            if v is None
            else np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        )

    x = arr(getattr(data, "x", None))
    if x is None:
        raise DataError(f"{name}: the Data object has no node features x")
    return graph_splits(
        x,
        arr(getattr(data, "edge_index", None)),
        arr(getattr(data, "y", None)),
        {k: arr(getattr(data, k, None)) for k in MASKS},
        name,
    )


def save_graph_npz(path: str | Path, x: Any, edge_index: Any, y: Any = None, **masks: Any) -> Path:
    """Write a graph in the ``.npz`` format :func:`load_graph_npz` reads (``--data PATH``); ``x``
    etc. may be numpy arrays or tensors (a PyG ``Data``: ``save_graph_npz(p, d.x, d.edge_index, d.y,
    train_mask=...)``)."""

    def arr(v: Any) -> np.ndarray:
        return np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)

    out = {"x": arr(x), "edge_index": arr(edge_index)}
    if y is not None:
        out["y"] = arr(y)
    out.update({k: arr(v) for k, v in masks.items() if v is not None})
    graph_splits(
        out["x"], out["edge_index"], out.get("y"), {k: out.get(k) for k in MASKS}, str(path)
    )
    p = Path(path)
    np.savez(p, **out)  # type: ignore[arg-type]
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")
