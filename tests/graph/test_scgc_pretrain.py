"""SCGC's autoencoder pre-training before k-means (SDCN's recipe, as the authors load it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup import resolve
from selfsup.data import load_source
from selfsup.methods.scgc import _subgraph
from selfsup.models.graph import GraphBatch, normalised_features
from selfsup.parts import assemble, with_defaults


def test_subgraph_keeps_the_edges_inside_and_renumbers_them():
    b = GraphBatch(torch.arange(5.0)[:, None], torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]]))
    s = _subgraph(b, torch.tensor([3, 1, 2]), 5)
    assert s.x.flatten().tolist() == [3.0, 1.0, 2.0]
    pairs = {(int(a), int(c)) for a, c in s.edge_index.t()}
    assert pairs == {(1, 2), (2, 0)}  # 1->2 and 2->3, renumbered (3 is 0, 1 is 1, 2 is 2)


def _rec_error(pretrain_epochs, tmp_path):
    cfg = resolve.resolve_config(
        method="scgc",
        data="sbm",
        out=str(tmp_path / "r"),
        overrides=[f"params.pretrain_epochs={pretrain_epochs}"],
    )
    splits = load_source("sbm")
    cfg = with_defaults(cfg, splits.train)
    p = assemble(cfg, splits.train, torch.device("cpu"))
    torch.manual_seed(0)
    p.method.prepare(p.x, p.views)
    b = GraphBatch(p.x.x, p.x.edge_index)
    with torch.no_grad():
        z = p.method.encoder(b).float()
        return float(F.mse_loss(p.method.decoder(z), normalised_features(p.method.encoder, b)))


def test_pretraining_lowers_the_reconstruction_error(tmp_path):
    # SBM features are noisy community means: a 10-d code reconstructs part of them
    assert _rec_error(5, tmp_path) < 0.9 * _rec_error(0, tmp_path)
