"""CPU seconds per GraphMAE training step on Cora (issue 24), for the step as it is and with its
cheaper parts switched back one at a time, and for older trees (a ``git archive`` of their src).

    # one variant, N steps (after 3 warm-up steps), one thread; prints the per-step CPU seconds
    OMP_NUM_THREADS=1 python benchmarks/graphmae_step.py --variant new --steps 20
    # variants interleaved in R rounds (each a fresh process), medians over all their steps;
    # NAME@PATH runs the tree at PATH as it is
    git archive ed14eb6 src | tar -x -C /tmp/gmh/old
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/graphmae_step.py --interleave 3 --steps 20 \
        --variants old@/tmp/gmh/old/src,sparse_drop,keep_mask,new

Variants of this tree, its parts switched back: ``sparse_drop`` = torch's ``bernoulli_`` for
every dropout mask and the decoder projecting to all 1,433 features before the loss (only the
first layer's dropout on the non-zeros kept); ``keep_mask`` = only the projecting decoder back
(masks from :func:`selfsup.models.graph.keep_mask`); ``new`` = the step as it is (the loss from
the decoder's aggregates, :func:`sce_loss_linear`). Run on d48ba52's tree these three were the
cumulative steps of that commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = ("as_is", "sparse_drop", "keep_mask", "new")


def _switch_back(variant: str) -> None:
    import selfsup.methods.graphmae as gm
    import selfsup.models.graph as graph

    if variant in ("sparse_drop",):

        def bernoulli_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
            return torch.empty(shape, dtype=like.dtype).bernoulli_(1 - p).div_(1 - p)

        graph.keep_mask = bernoulli_mask  # type: ignore[assignment]
    if variant in ("sparse_drop", "keep_mask"):
        sce = gm.sce_loss

        def projected(x, a, w, b, gamma):  # type: ignore[no-untyped-def]
            x = x.to_dense() if x.layout == torch.sparse_csr else x
            return sce(x, a @ w.t() + b, gamma)

        gm.sce_loss_linear = projected


def step_times(source: str, steps: int, variant: str, seed: int = 0) -> list[float]:
    from selfsup.methods.base import Context
    from selfsup.methods.graphmae import GraphMAE, GraphMAEParams
    from selfsup.models.graph import GraphBatch, GraphEncoder, build_graph_backbone

    if variant not in ("as_is", "new"):
        _switch_back(variant)
    torch.set_num_threads(1)
    z = np.load(source)
    x, e = torch.from_numpy(z["x"]).float(), torch.from_numpy(z["edge_index"])
    torch.manual_seed(seed)
    d = x.shape[1]
    enc = GraphEncoder(build_graph_backbone("gat", d, 2.0), "row", torch.zeros(d), torch.ones(d))
    m = GraphMAE(enc, GraphMAEParams(), Context())
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    b = GraphBatch(x, e)
    out = []
    for i in range(steps + 3):
        t0 = time.process_time()
        loss, _ = m([b], None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 3:
            out.append(time.process_time() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cora.npz")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--variant", choices=VARIANTS, default="new")
    ap.add_argument("--interleave", type=int, default=0, metavar="R")
    ap.add_argument("--variants", default="sparse_drop,keep_mask,new", help="NAME or NAME@SRC")
    a = ap.parse_args()
    if not a.interleave:
        print(json.dumps({"variant": a.variant, "cpu_s": step_times(a.data, a.steps, a.variant)}))
        return
    times: dict[str, list[float]] = {v: [] for v in a.variants.split(",")}
    loads = []
    for r in range(a.interleave):
        for v in times:
            env, variant = dict(os.environ, OMP_NUM_THREADS="1"), v
            if "@" in v:
                variant, src = "as_is", v.split("@", 1)[1]
                env["PYTHONPATH"] = str(Path(src).resolve())
            cmd = [sys.executable, __file__, "--variant", variant, "--steps", str(a.steps)]
            res = subprocess.run(
                [*cmd, "--data", a.data], env=env, capture_output=True, text=True, check=True
            )
            got = json.loads(res.stdout.strip().splitlines()[-1])["cpu_s"]
            times[v] += got
            loads.append(os.getloadavg()[0])
            print(f"round {r} {v}: median {statistics.median(got):.3f}", flush=True)
    for v, t in times.items():
        print(f"{v}: median {statistics.median(t):.3f} CPU s/step over {len(t)} steps")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
