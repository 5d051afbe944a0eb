"""The GAT layer's fast paths (CSR aggregation, aggregate-then-project, destination subsets) compute
the same numbers and gradients as the plain per-edge formula (Velickovic et al. 2018; the DGL
``GATConv`` that GraphMAE's authors use: THUDM/GraphMAE ``graphmae/models/gat.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup.models.graph import GATLayer, add_self_loops, edge_aggregate


def _reference_gat(layer: GATLayer, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Project, score every edge, softmax over each node's in-edges by a loop, sum the messages."""
    n = len(h)
    e = add_self_loops(edge_index, n)
    feat = layer.fc(h).view(n, layer.heads, layer.d_out)
    el, er = (feat * layer.attn_l).sum(-1), (feat * layer.attn_r).sum(-1)
    score = F.leaky_relu(el[e[0]] + er[e[1]], layer.negative_slope)
    out = torch.zeros_like(feat)
    for i in range(n):
        into = torch.nonzero(e[1] == i).flatten()
        a = torch.softmax(score[into], dim=0)  # (in-degree, H)
        out[i] = (a.unsqueeze(-1) * feat[e[0, into]]).sum(0)
    out = out.flatten(1) if layer.concat else out.mean(1)
    return out + layer.bias


def _graph(n: int = 12, m: int = 30, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (2, m), generator=g)
    return torch.cat([e, e.flip(0)], 1)


@pytest.mark.parametrize("d_in,d_out,heads", [(6, 3, 2), (3, 7, 1), (4, 5, 3)])
def test_gat_layer_matches_the_per_edge_formula_with_its_gradients(d_in, d_out, heads):
    torch.manual_seed(0)
    layer = GATLayer(d_in, d_out, heads).double()
    with torch.no_grad():
        layer.bias.normal_()
    e = _graph()
    h = torch.randn(12, d_in, dtype=torch.float64, requires_grad=True)
    got, ref = layer(h, e), _reference_gat(layer, h, e)
    assert torch.allclose(got, ref, atol=1e-10)
    gw = torch.randn_like(ref)
    g1 = torch.autograd.grad((got * gw).sum(), [h, *layer.parameters()])
    g2 = torch.autograd.grad((ref * gw).sum(), [h, *layer.parameters()])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10)


def test_gat_layer_on_destination_nodes_gives_their_rows_of_the_full_output():
    torch.manual_seed(1)
    layer = GATLayer(4, 9, 1).double()
    e, h = _graph(seed=3), torch.randn(12, 4, dtype=torch.float64)
    dst = torch.tensor([7, 2, 11, 0])
    assert torch.allclose(layer(h, e, dst), layer(h, e)[dst], atol=1e-12)


def test_edge_aggregate_gradcheck():
    e = add_self_loops(_graph(n=6, m=8), 6)
    feat = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    a = torch.rand(e.shape[1], 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, w: edge_aggregate(f, w, e[0], e[1], 6), (feat, a))


def test_l2_penalty_with_adam_takes_the_steps_of_adam_with_weight_decay():
    from selfsup.losses.l2 import l2_penalty

    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 3).double(), torch.nn.Linear(5, 3).double()
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)
    opt_a = torch.optim.Adam(a.parameters(), lr=0.05, weight_decay=0.3)
    opt_b = torch.optim.AdamW(b.parameters(), lr=0.05, weight_decay=0.0)
    for _ in range(20):
        for m, opt, pen in ((a, opt_a, 0.0), (b, opt_b, 0.3)):
            loss = (m(x) - y).pow(2).mean() + l2_penalty(m, pen)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-12)


def _blobs(n: int = 60, k: int = 3, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centres = torch.randn(k, d, generator=g) * 4
    x = centres[y] + torch.randn(n, d, generator=g)
    idx = torch.randperm(n, generator=g)
    return x, y, idx[:30], idx[30:40], idx[40:]


def test_graphmaes_adam_probe_scores_the_best_validation_epoch():
    from selfsup.eval.graph import adam_probe

    x, y, tr, va, te = _blobs()
    r = adam_probe(x, y, tr, va, te, epochs=50)
    assert r["node_adam_top1"] == 1.0 and r["node_adam_val_top1"] == 1.0


def test_graces_probe_ignores_each_nodes_feature_scale():
    """GRACE's probe L2-normalises every node's features (CRIPAC-DIG/GRACE ``eval.py``)."""
    from selfsup.eval.graph import grace_probe

    x, y, tr, _, te = _blobs(n=80, seed=1)
    x = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2)) * 3
    scale = torch.rand(len(x), 1, generator=torch.Generator().manual_seed(3)) * 100 + 0.01
    a, b = grace_probe(x, y, tr, te), grace_probe(x * scale, y, tr, te)
    assert a["node_grace_top1"] == b["node_grace_top1"] and a["node_grace_C"] == b["node_grace_C"]


def test_the_node_grace_protocol_runs_on_a_graph(tmp_path):
    import selfsup

    run = selfsup.train(
        method="grace",
        data="sbm",
        epochs=2,
        out=str(tmp_path / "r"),
        overrides=[
            "eval.protocols=[node,node_grace]",
            "eval.diagnostics=false",
            "eval.report=false",
            "eval.baselines=false",
        ],
    )
    assert 0 <= run.summary["eval"]["node_grace_top1"] <= 1


def test_the_authors_optimiser_settings_are_the_graph_methods_defaults():
    """GraphMAE: Adam with coupled weight decay 2e-4 (``params.l2``, AdamW's decay 0; THUDM/GraphMAE
    ``configs.yml``); GRACE: a constant rate (CRIPAC-DIG/GRACE ``train.py`` has no scheduler)."""
    from selfsup.data import load_source
    from selfsup.methods.graphmae import GraphMAEParams
    from selfsup.parts import with_defaults
    from selfsup.resolve import resolve_config

    train = load_source("karate").train

    def resolved(method: str, *overrides: str):
        return with_defaults(
            resolve_config(method=method, data="karate", overrides=list(overrides)), train
        )

    gm = resolved("graphmae")
    assert gm.optim.weight_decay == 0.0 and GraphMAEParams().l2 == 2e-4
    gr = resolved("grace")
    assert gr.optim.schedule == "constant" and gr.optim.lr == 5e-4
    assert resolved("grace", "optim.schedule=cosine").optim.schedule == "cosine"  # the user wins


def test_graces_split_probe_trains_on_a_tenth_of_the_nodes():
    """GRACE's own protocol (CRIPAC-DIG/GRACE ``eval.py``): random 10 % / 90 % splits of all nodes,
    repeated (3 times there); the mean accuracy is that of GRACE's probe on each split."""
    from sklearn.model_selection import train_test_split

    from selfsup.eval.graph import grace_probe, grace_split_probe

    x, y, *_ = _blobs(n=100, seed=4)
    r = grace_split_probe(x, y, ratio=0.1, repeats=2, seed=5)
    idx = np.arange(100)
    accs = []
    for k in range(2):
        tr, te = train_test_split(idx, train_size=0.1, random_state=5 + k)
        assert len(tr) == 10 and len(te) == 90
        accs.append(grace_probe(x, y, torch.tensor(tr), torch.tensor(te), seed=5 + k))
    assert r["node_grace_split_top1"] == pytest.approx(
        np.mean([a["node_grace_top1"] for a in accs])
    )
    assert r["node_grace_split_std"] >= 0
    with pytest.raises(ValueError, match="ratio"):
        grace_split_probe(x, y, ratio=1.0)


@pytest.mark.parametrize("train,one_row", [(False, False), (False, True)])
def test_a_row_patch_gives_the_dense_inputs_output_and_gradients(train, one_row):
    """GraphMAE's masked input: data rows (sparse, no gradient) and [MASK] token rows apart; the GAT
    layer computes the same numbers as on the plain matrix. (Since issue 24 the sparse rows draw
    their dropout for their non-zeros only, another draw of the same distribution: the masked
    path under a given mask is checked in ``test_graphmae_fast_paths.py``.)"""
    from selfsup.models.graph import RowPatch

    torch.manual_seed(2)
    layer = GATLayer(7, 3, 2, feat_drop=0.3, attn_drop=0.0).double().train(train)
    e = _graph()
    base = torch.rand(12, 7, dtype=torch.float64) * (torch.rand(12, 7) < 0.3)  # sparse-ish data
    rows = torch.tensor([5, 0, 9, 3])
    token = torch.randn(1, 7, dtype=torch.float64, requires_grad=True)
    gw = torch.randn(12, 6, dtype=torch.float64)
    outs, grads = [], []
    for patched in (False, True):
        values = token if one_row else base[rows] * 0 + token
        h = RowPatch(base, rows, values)
        torch.manual_seed(3)
        out = layer(h if patched else h.dense(), e)
        outs.append(out)
        grads.append(torch.autograd.grad((out * gw).sum(), [token, *layer.parameters()]))
    assert torch.allclose(outs[0], outs[1], atol=1e-12)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-12)
