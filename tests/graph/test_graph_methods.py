"""Graph methods: a few steps lower the loss without NaN; a run resumes bit-identically; the
evaluation keys and baselines; a saved encoder works on a graph batch."""

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data import load_source
from selfsup.methods.base import Batch
from selfsup.parts import assemble
from selfsup.resolve import resolve_config

FAST = ["eval.report=false", "eval.diagnostics=false", "train.progress=none", "model.width=0.25"]


@pytest.mark.parametrize(
    "name,extra",
    [
        ("graphmae", []),
        ("grace", []),
        ("scgc", []),
        ("scgc", ["params.variant=scgc_star", "params.order=2"]),
    ],
)
def test_graph_methods_lower_their_loss(name, extra):
    tr = load_source("karate").train
    cfg = resolve_config(method=name, data="karate", batch_size=34, overrides=FAST + extra)
    parts = assemble(cfg, tr, torch.device("cpu"))
    m = parts.method
    torch.manual_seed(0)
    m.prepare(parts.x, parts.views)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    x = parts.x[torch.arange(34)]
    losses = []
    m.eval()  # no dropout: the same views and masks each step, so the loss on them must fall
    for _ in range(25):
        torch.manual_seed(1)
        loss, logs = m(parts.views(x), Batch(x, torch.arange(34)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses


def test_a_graph_run_resumes_bit_identically_and_evaluates_with_baselines(resume_matches_full):
    cfg = {
        "method": "grace",
        "data": {"source": "karate"},
        "model": {"width": 0.25},
        "train": {"epochs": 4, "progress": "none"},
        "eval": {"report": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    ev = full.summary["eval"]
    assert {"node_top1", "cluster_nmi", "cluster_ari"} <= set(ev) and resumed.summary["eval"] == ev
    raw = full.summary["baselines"]["raw_input"]
    assert {"node_top1", "cluster_nmi", "cluster_ari", "spectral_nmi", "spectral_ari"} <= set(raw)
    assert (
        full.summary["eval_data"]["bank_size"] == 28 and full.config.train.batch_size == 34
    )  # full batch

    enc = selfsup.load_encoder(full.dir)
    x = selfsup.modalities.get("graph").to_tensor(load_source("karate").train)
    with torch.no_grad():
        assert enc(x).shape == (34, enc.out_dim) and enc(x[torch.arange(3)]).shape == (
            3,
            enc.out_dim,
        )


@pytest.mark.parametrize("backbone", ["gcn", "gat", "gin", "mlp"])
def test_every_graph_backbone_trains(backbone, tmp_path):
    run = selfsup.train(
        method="grace",
        data="karate",
        epochs=1,
        out=str(tmp_path / backbone),
        overrides=FAST
        + ["eval.baselines=false", f"model.backbone={backbone}", "views.preset=subgraph"],
    )
    assert np.isfinite(run.summary["eval"]["node_top1"])
