"""Graph benchmarks: self-supervised methods on a graph beside a supervised GCN and the raw
baselines.

    python benchmarks/graph.py --data ../shared/data/cora.npz --methods grace,scgc,graphmae --gcn
    python benchmarks/graph.py --data sbm --methods grace --epochs 20
    python benchmarks/graph.py --methods graphmae --seeds 0,1,2 --probes
    python benchmarks/graph.py --methods "" --step-cost 20      # CPU s per GraphMAE step on Cora

For each method: ``selfsup.train`` with the method's Cora defaults (``Needs.defaults``; ``--epochs``
and ``--set KEY=VALUE`` override them) into ``--out/<method>``, then one line of JSON with the
node-classification accuracy (linear probe on the train mask, scored on the test mask), clustering
NMI/ARI (k-means on every labelled node), the raw-feature probe, k-means on raw features, spectral
clustering of the adjacency, and the training time. ``--gcn``: the supervised reference (Kipf &
Welling 2017: a 2-layer GCN, 16 hidden units, dropout 0.5, Adam lr 0.01, weight decay 5e-4 on the
first layer, 200 epochs; test accuracy at the epoch of best validation accuracy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def supervised_gcn(source: str, seed: int = 0, epochs: int = 200) -> dict:
    from selfsup.data import load_source
    from selfsup.models.graph import GCNLayer

    s = load_source(source)
    tr, te = s.train, s.test
    x = torch.from_numpy(tr.features).float()
    if (x >= 0).all():
        x = x / x.sum(1, keepdim=True).clamp(min=1e-12)
    e = torch.from_numpy(tr.edge_index)
    y = torch.from_numpy(tr.node_y)
    train_idx = torch.from_numpy(np.flatnonzero(tr.y >= 0))
    test_idx = torch.from_numpy(te.nodes)
    masks = tr.info.get("masks", [])
    val_idx = test_idx
    if "val_mask" in masks:  # the npz's own validation nodes
        z = np.load(source)
        val_idx = torch.from_numpy(np.flatnonzero(z["val_mask"]))
    torch.manual_seed(seed)
    k = int(y.max()) + 1
    l1, l2 = GCNLayer(x.shape[1], 16), GCNLayer(16, k)
    opt = torch.optim.Adam(
        [
            {"params": l1.parameters(), "weight_decay": 5e-4},
            {"params": l2.parameters(), "weight_decay": 0.0},
        ],
        lr=0.01,
    )
    best = (-1.0, 0.0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        l1.train()
        h = F.dropout(F.relu(l1(F.dropout(x, 0.5, True), e)), 0.5, True)
        loss = F.cross_entropy(l2(h, e)[train_idx], y[train_idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            pred = l2(F.relu(l1(x, e)), e).argmax(1)
            val = float((pred[val_idx] == y[val_idx]).float().mean())
            test = float((pred[test_idx] == y[test_idx]).float().mean())
        if val > best[0]:
            best = (val, test)
    return {
        "method": "supervised_gcn",
        "val_top1": best[0],
        "node_top1": best[1],
        "train_time_s": round(time.perf_counter() - t0, 1),
    }


def authors_probes(run, source: str, seed: int) -> dict:
    """GraphMAE's Adam probe (best validation epoch) and GRACE's probe (L2-normalised features, C by
    5-fold cross-validation; on the public split and on GRACE's own random 10 % / 90 % splits) on
    the run's frozen encoder (:mod:`selfsup.eval.graph`)."""
    from selfsup.eval.graph import adam_probe, grace_probe, grace_split_probe
    from selfsup.models.graph import GraphBatch

    z = np.load(source)
    enc = run.encoder.eval()
    with torch.no_grad():
        f = enc(GraphBatch(torch.from_numpy(z["x"]), torch.from_numpy(z["edge_index"]))).float()
    y = torch.from_numpy(z["y"])
    tr, va, te = (torch.from_numpy(np.flatnonzero(z[k])) for k in MASKS)
    return {
        **adam_probe(f, y, tr, va, te, seed=seed),
        **grace_probe(f, y, tr, te, seed=seed),
        **grace_split_probe(f, y, seed=seed),  # GRACE's own random 10 % / 90 % splits
    }


MASKS = ("train_mask", "val_mask", "test_mask")


def graphmae_step_cost(source: str, steps: int, seed: int = 0) -> dict:
    """Process CPU seconds per full-graph GraphMAE training step (the Cora setting: GAT 4 x 128,
    decoder GAT to the input features, Adam), one thread, after 3 warm-up steps."""
    from selfsup.methods.base import Context
    from selfsup.methods.graphmae import GraphMAE, GraphMAEParams
    from selfsup.models.graph import GraphBatch, GraphEncoder, build_graph_backbone

    torch.set_num_threads(1)
    z = np.load(source)
    x, e = torch.from_numpy(z["x"]).float(), torch.from_numpy(z["edge_index"])
    torch.manual_seed(seed)
    d = x.shape[1]
    enc = GraphEncoder(build_graph_backbone("gat", d, 2.0), "row", torch.zeros(d), torch.ones(d))
    m = GraphMAE(enc, GraphMAEParams(), Context())
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    b = GraphBatch(x, e)

    def step() -> None:
        loss, _ = m([b], None)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.process_time()
    for _ in range(steps):
        step()
    return {"graphmae_cpu_s_per_step": round((time.process_time() - t0) / steps, 3), "steps": steps}


def run_method(
    method: str,
    source: str,
    out: Path,
    epochs: int | None,
    sets: list[str],
    seed: int = 0,
    probes: bool = False,
) -> dict:
    import selfsup

    opts = {"method": method, "data": source, "out": str(out / method), "overwrite": True}
    if epochs:
        opts["epochs"] = epochs
    t0 = time.process_time()
    run = selfsup.train(overrides=[*sets, f"train.seed={seed}"], **opts)
    cpu = round(time.process_time() - t0, 1)
    s = run.summary
    extra = authors_probes(run, source, seed) if probes else {}
    raw = s.get("baselines", {}).get("raw_input", {})
    rnd = s.get("baselines", {}).get("random_init", {})
    return {
        "method": method,
        "epochs": s["epochs"],
        **s["eval"],
        "raw_node_top1": raw.get("node_top1"),
        "raw_kmeans_nmi": raw.get("cluster_nmi"),
        "raw_kmeans_ari": raw.get("cluster_ari"),
        "spectral_nmi": raw.get("spectral_nmi"),
        "spectral_ari": raw.get("spectral_ari"),
        "random_init_node_top1": rnd.get("node_top1"),
        "train_time_s": s["train_time_s"],
        "wall_time_s": s["wall_time_s"],
        "process_cpu_s": cpu,
        "seed": seed,
        "sets": sets,
        **extra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cora.npz")
    ap.add_argument("--methods", default="grace,scgc,graphmae")
    ap.add_argument("--epochs", type=int, default=None, help="override every method's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--gcn", action="store_true", help="also the supervised GCN reference")
    ap.add_argument("--out", default="/tmp/selfsup-graph-bench")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument(
        "--probes",
        action="store_true",
        help="also the authors' node probes: GraphMAE's Adam probe (node_adam_top1, needs a "
        "val_mask) and GRACE's (node_grace_top1)",
    )
    ap.add_argument(
        "--step-cost", type=int, default=0, metavar="N", help="time N GraphMAE steps first"
    )
    ap.add_argument(
        "--probe-runs",
        default="",
        metavar="DIR,DIR",
        help="only the authors' probes (--probes) on the saved encoders of "
        "finished run directories",
    )
    a = ap.parse_args()
    out = Path(a.out)
    if a.probe_runs:
        from types import SimpleNamespace

        import selfsup

        for d in a.probe_runs.split(","):
            run = SimpleNamespace(encoder=selfsup.load_encoder(d))
            print(json.dumps({"run": d, **authors_probes(run, a.data, 0)}), flush=True)
        return
    if a.step_cost:
        print(json.dumps(graphmae_step_cost(a.data, a.step_cost)), flush=True)
    if a.gcn:
        print(json.dumps(supervised_gcn(a.data)), flush=True)
    for seed in [int(v) for v in a.seeds.split(",")]:
        for m in [m for m in a.methods.split(",") if m]:
            r = run_method(m, a.data, out / f"seed{seed}", a.epochs, a.set, seed, a.probes)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
