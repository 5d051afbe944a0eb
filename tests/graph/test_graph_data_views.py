"""Graph sources, malformed graphs, views (shape, dtype, seed) and the plain-torch layers."""

import numpy as np
import pytest
import torch

from selfsup.cli import main
from selfsup.data import load_source
from selfsup.data.graph import graph_splits, save_graph_npz
from selfsup.errors import DataError
from selfsup.models.graph import GATLayer, GCNLayer, GINLayer, GraphBatch, edge_softmax
from selfsup.views.graph import (
    GraphViews,
    GraphViewSpec,
    drop_edges,
    drop_nodes,
    mask_features,
    random_walk_subgraph,
)


def ring(n=10, f=6, seed=0):
    rng = np.random.default_rng(seed)
    s = np.arange(n)
    e = np.stack([np.concatenate([s, (s + 1) % n]), np.concatenate([(s + 1) % n, s])])
    return rng.random((n, f)).astype(np.float32), e, np.arange(n) % 2


def test_npz_with_masks_gives_the_train_mask_bank_and_the_test_mask_query(tmp_path):
    x, e, y = ring(12)
    tm, te = np.zeros(12, bool), np.zeros(12, bool)
    tm[:4], te[6:] = True, True
    p = save_graph_npz(tmp_path / "g.npz", x, e, y, train_mask=tm, test_mask=te)
    s = load_source(str(p))
    assert len(s.train) == 12 and (s.train.y >= 0).sum() == 4 and len(s.test) == 6
    assert s.test.edge_index.shape == (2, 24) and np.array_equal(s.test.nodes, np.arange(6, 12))
    assert np.array_equal(s.train.node_y, y)
    sub = s.train.subset(np.array([3, 5]))
    assert sub.edge_index is s.train.edge_index and np.array_equal(sub.x, x[[3, 5]])


def test_builtins_karate_and_sbm():
    k = load_source("karate")
    assert k.train.n_nodes == 34 and k.train.edge_index.shape == (2, 156)
    a, b = load_source("sbm"), load_source("sbm")
    assert np.array_equal(a.train.edge_index, b.train.edge_index)  # seeded
    assert a.train.n_nodes == 400 and a.train.channels == 32


@pytest.mark.parametrize(
    "bad,why",
    [
        (lambda x, e: (x, e + 5), "points past"),
        (lambda x, e: (x, -e), "points past"),
        (lambda x, e: (x, e[0]), "shape (2, E)"),
        (lambda x, e: (x, e.astype(np.float32) + 0.5), "integers"),
        (lambda x, e: (x[:, 0], e), "(N, F)"),
        (lambda x, e: (np.where(x > 0.5, np.nan, x), e), "NaN"),
    ],
)
def test_malformed_graphs_are_refused_in_one_line(bad, why):
    x, e, y = ring()
    xb, eb = bad(x, e)
    with pytest.raises(DataError, match=__import__("re").escape(why)):
        graph_splits(xb, eb, y)


def test_cli_refuses_an_edge_past_the_node_count_and_writes_nothing(tmp_path, capsys):
    x, e, y = ring()
    e[1, 3] = 10
    np.savez(tmp_path / "bad.npz", x=x, edge_index=e, y=y)
    out = tmp_path / "run"
    rc = main(
        ["train", "--method", "grace", "--data", str(tmp_path / "bad.npz"), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        rc == 2
        and len(err) == 1
        and err[0].startswith("error:")
        and "points past the 10 nodes" in err[0]
    )
    assert not out.exists()


def test_cli_refuses_a_tensor_method_on_a_graph_and_a_graph_method_elsewhere(tmp_path, capsys):
    assert (
        main(["train", "--method", "simclr", "--data", "karate", "--out", str(tmp_path / "a")]) == 2
    )
    assert "does not train on graphs" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--method",
                "grace",
                "--data",
                "wine",
                "--batch-size",
                "32",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    assert "trains on graphs only" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def batch():
    x, e, _ = ring(20, 8)
    return GraphBatch(torch.from_numpy(x), torch.from_numpy(e), torch.arange(5, 15))


@pytest.mark.parametrize(
    "view",
    [
        lambda b: drop_edges(b, 0.5),
        lambda b: mask_features(b, 0.5),
        lambda b: drop_nodes(b, 0.5),
        lambda b: random_walk_subgraph(b, 2),
    ],
)
def test_each_view_keeps_shapes_dtypes_and_nodes_and_is_seeded(view):
    b = batch()
    torch.manual_seed(0)
    v1 = view(b)
    torch.manual_seed(0)
    v2 = view(b)
    assert (
        v1.x.shape == b.x.shape
        and v1.x.dtype == torch.float32
        and v1.edge_index.dtype == torch.int64
    )
    assert v1.edge_index.shape[0] == 2 and v1.edge_index.shape[1] <= b.edge_index.shape[1]
    assert torch.equal(v1.nodes, b.nodes) and len(v1) == 10
    assert torch.equal(v1.x, v2.x) and torch.equal(v1.edge_index, v2.edge_index)
    torch.manual_seed(1)
    v3 = view(b)
    assert not (torch.equal(v1.x, v3.x) and torch.equal(v1.edge_index, v3.edge_index))


def test_view_semantics():
    b = batch()
    torch.manual_seed(0)
    m = mask_features(b, 0.5)
    zero_cols = (m.x == 0).all(0)
    assert zero_cols.any() and torch.equal(m.x[:, ~zero_cols], b.x[:, ~zero_cols])  # whole columns
    d = drop_nodes(b, 0.5)
    gone = (d.x == 0).all(1)
    assert gone.any() and not (gone[d.edge_index[0]] | gone[d.edge_index[1]]).any()
    w = random_walk_subgraph(b, 2)
    kept = ~(w.x == 0).all(1)
    assert kept[b.nodes].all() and kept.sum() < 20  # every batch node kept, far nodes gone
    vs = GraphViews(GraphViewSpec([0.2, 0.4], [0.3, 0.4]), 2)(b)
    assert len(vs) == 2 and all(isinstance(v, GraphBatch) for v in vs)


def test_gcn_layer_matches_the_dense_formula():
    x, e, _ = ring(6, 3)
    layer = GCNLayer(3, 2)
    a = np.eye(6)
    a[e[0], e[1]] = 1
    d = np.diag(a.sum(1) ** -0.5)
    ref = d @ a.T @ d @ (x @ layer.lin.weight.detach().numpy().T) + layer.bias.detach().numpy()
    assert np.allclose(
        layer(torch.from_numpy(x), torch.from_numpy(e)).detach().numpy(), ref, atol=1e-5
    )


def test_gat_attention_sums_to_one_and_layers_are_permutation_equivariant():
    s = torch.tensor([0.0, 1.0, 2.0, 5.0]).view(4, 1)
    dst = torch.tensor([0, 0, 1, 1])
    a = edge_softmax(s, dst, 2)
    assert torch.allclose(torch.zeros(2, 1).index_add_(0, dst, a), torch.ones(2, 1))
    x, e, _ = ring(8, 4)
    x, e = torch.from_numpy(x), torch.from_numpy(e)
    perm = torch.randperm(8)
    inv = torch.argsort(perm)
    for layer in (GCNLayer(4, 3), GATLayer(4, 3, heads=2), GINLayer(4, 3)):
        out = layer(x, e)
        out_p = layer(x[perm], inv[e])
        assert torch.allclose(out_p, out[perm], atol=1e-5), type(layer).__name__


def test_edge_list_csv_with_a_node_table(tmp_path, capsys):
    (tmp_path / "nodes.csv").write_text(
        "id,f1,f2,club\na,1,0,x\nb,0,1,y\nc,1,1,x\nd,0,0,y\ne,2,1,x\nf,1,2,y\n"
    )
    (tmp_path / "edges.csv").write_text("source,target\na,b\nb,c\nc,a\nd,e\ne,f\nb,a\n")
    s = load_source(f"graph:{tmp_path / 'edges.csv'},{tmp_path / 'nodes.csv'}", label_column="club")
    tr = s.train
    assert tr.n_nodes == 6 and tr.channels == 2 and tr.classes == ["x", "y"]
    assert tr.edge_index.shape == (2, 10)  # 6 rows, b->a given, the other 4 reversed added
    assert np.array_equal(tr.node_y, [0, 1, 0, 1, 0, 1])
    (tmp_path / "edges2.csv").write_text("source,target\na,zz\n")
    rc = main(
        [
            "train",
            "--method",
            "grace",
            "--data",
            f"graph:{tmp_path / 'edges2.csv'},{tmp_path / 'nodes.csv'}",
            "--label-column",
            "club",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        rc == 2
        and len(err) == 1
        and "node 'zz' is not in" in err[0]
        and not (tmp_path / "r").exists()
    )


def test_from_pyg_reads_a_data_like_object():
    from types import SimpleNamespace

    from selfsup.data.graph import from_pyg

    x, e, y = ring(8)
    tm = np.zeros(8, bool)
    tm[:3] = True
    d = SimpleNamespace(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(e),
        y=torch.from_numpy(y),
        train_mask=torch.from_numpy(tm),
        val_mask=None,
        test_mask=torch.from_numpy(~tm),
    )
    s = from_pyg(d)
    assert s.train.n_nodes == 8 and (s.train.y >= 0).sum() == 3 and len(s.test) == 5
    with pytest.raises(DataError, match="no node features"):
        from_pyg(SimpleNamespace(edge_index=torch.from_numpy(e)))
