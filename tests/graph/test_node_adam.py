"""The ``node_adam`` protocol: GraphMAE's probe (THUDM/GraphMAE ``graphmae/evaluation.py``), its
epoch chosen on the graph's val-mask nodes, which the splits now keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.data.graph import graph_splits, save_graph_npz, sbm_graph
from selfsup.errors import DataError
from selfsup.eval import protocols as EP
from selfsup.eval.graph import adam_probe


def _masked_sbm():
    """The built-in SBM (400 nodes, 4 blocks) with train / val / test masks of 40 / 80 / 200."""
    x, e, y = sbm_graph()
    order = np.random.default_rng(0).permutation(len(x))
    masks = {k: np.zeros(len(x), bool) for k in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][order[:40]] = True
    masks["val_mask"][order[40:120]] = True
    masks["test_mask"][order[120:320]] = True
    return x, e, y, masks


def test_the_splits_keep_the_labelled_val_mask_nodes():
    x, e, y, masks = _masked_sbm()
    y = y.copy()
    unlabelled = np.flatnonzero(masks["val_mask"])[0]
    y[unlabelled] = -1
    s = graph_splits(x, e, y, masks)
    want = np.flatnonzero(masks["val_mask"] & (y >= 0))
    assert np.array_equal(s.train.val_nodes, want) and len(want) == 79
    assert np.array_equal(s.test.val_nodes, want)  # shared by every subset
    assert (
        graph_splits(x, e, y, {k: masks[k] for k in ("train_mask", "test_mask")}).train.val_nodes
        is None
    )


@pytest.mark.parametrize("other", ["train_mask", "test_mask"])
def test_a_val_mask_sharing_nodes_with_train_or_test_is_refused_in_one_line(other):
    x, e, y, masks = _masked_sbm()
    node = int(np.flatnonzero(masks[other])[0])
    masks["val_mask"][node] = True
    with pytest.raises(DataError) as err:
        graph_splits(x, e, y, masks)
    msg = str(err.value)
    assert "\n" not in msg and f"val_mask and {other} share 1" in msg and str(node) in msg


def _inputs(with_val: bool):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    f = torch.randn(3, 6, generator=g)[y] * 1.5 + torch.randn(90, 6, generator=g)
    ec = type("EC", (), {"seed": 3})()
    i = EP.EvalInputs(f[:30], y[:30], f[30:70], y[30:70], ec)
    if with_val:
        i.val, i.val_y = f[70:], y[70:]
    return f, y, i


def test_node_adam_is_graphmaes_probe_with_the_validation_nodes():
    f, y, i = _inputs(True)
    got = EP.run(["node_adam"], i)
    want = adam_probe(f, y, torch.arange(30), torch.arange(70, 90), torch.arange(30, 70), seed=3)
    assert got == want and set(got) == {
        "node_adam_top1",
        "node_adam_val_top1",
        "node_adam_last_top1",
    }


def test_node_adam_without_validation_nodes_scores_the_final_epoch():
    f, y, i = _inputs(False)
    got = EP.run(["node_adam"], i)
    assert set(got) == {"node_adam_top1", "node_adam_last_top1"}
    assert got["node_adam_top1"] == got["node_adam_last_top1"]
    assert got == adam_probe(f[:70], y[:70], torch.arange(30), None, torch.arange(30, 70), seed=3)


def test_the_best_validation_epoch_is_not_the_final_one_when_validation_falls():
    """A probe that overfits: the chosen epoch's test accuracy is the one at the best validation
    accuracy (GraphMAE's ``>=``), which differs here from the final epoch's."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(300) % 2
    x = torch.randn(300, 200, generator=g)
    x[:, 0] += (2 * y - 1) * 0.6  # one weak informative feature among 200 noise ones
    tr, va, te = torch.arange(20), torch.arange(20, 160), torch.arange(160, 300)
    r = adam_probe(x, y, tr, va, te, epochs=300)
    assert r["node_adam_top1"] != r["node_adam_last_top1"]
    # a loop over the epochs written out, for the same seed, gives the same choice
    lin = torch.nn.Linear(200, 2)
    gg = torch.Generator().manual_seed(0)
    with torch.no_grad():
        b = 1 / np.sqrt(200)
        lin.weight.uniform_(-b, b, generator=gg)
        lin.bias.uniform_(-b, b, generator=gg)
    opt = torch.optim.Adam(lin.parameters(), lr=0.01, weight_decay=1e-4)
    hist = []
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(lin(x[tr]), y[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            p = lin(x).argmax(1)
        hist.append(
            (float((p[va] == y[va]).float().mean()), float((p[te] == y[te]).float().mean()))
        )
    best = max(v for v, _ in hist)
    last_best = [t for v, t in hist if v == best][-1]
    assert r["node_adam_top1"] == last_best and r["node_adam_val_top1"] == best


def test_a_run_on_a_graph_with_a_val_mask_reports_node_adam(tmp_path):
    import selfsup

    x, e, y, masks = _masked_sbm()
    path = save_graph_npz(tmp_path / "g.npz", x, e, y, **masks)
    run = selfsup.train(
        method="grace",
        data=str(path),
        epochs=2,
        out=str(tmp_path / "r"),
        overrides=[
            "eval.protocols=[node,node_adam]",
            "eval.diagnostics=false",
            "eval.report=false",
            "eval.baselines=false",
        ],
    )
    ev = run.summary["eval"]
    assert 0 <= ev["node_adam_top1"] <= 1 and 0 <= ev["node_adam_val_top1"] <= 1


def test_node_adam_is_a_default_protocol_only_on_graphs_with_validation_nodes():
    from selfsup.modalities.graph import GraphModality

    x, e, y, masks = _masked_sbm()
    with_val = graph_splits(x, e, y, masks).train
    without = graph_splits(x, e, y, {k: masks[k] for k in ("train_mask", "test_mask")}).train
    m = GraphModality()
    assert m.config_defaults(None, with_val)["eval"]["protocols"] == [
        "node",
        "node_adam",
        "cluster",
    ]
    assert m.config_defaults(None, without)["eval"]["protocols"] == ["node", "cluster"]
